"""Keeping secrets out of everything the process writes, and data out of the runner's commands."""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus

from .errors import TRUNCATED  # what one_line puts where it cuts a long text

REDACTED = "***"
# A shorter stub of a secret is too short to tell from ordinary text (and too short to use).
MIN_CUT_LENGTH = 4


class Redactor:
    """The secrets seen so far, and text with each of them replaced by ***."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        # Longest first, so a secret that contains another is hidden whole; kept sorted
        # here, not at each of the thousands of texts a large run redacts.
        self._longest_first: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> list[str]:
        """Remember a secret and the forms it can take on its way out; returns the new ones.

        The forms: each of its lines; its whitespace folded to single spaces (as
        `one_line` writes a message); URL-encoded (as an error may echo a request);
        and how JSON writes each (the `results` output and `--json` escape quotes,
        backslashes and non-ASCII).
        """
        if not secret.strip():
            return []
        parts = [secret, *secret.splitlines(), " ".join(secret.split())]
        # As its bytes go on the wire: a secret read from bytes that are not UTF-8 holds
        # them as surrogate escapes, which quote() would otherwise refuse.
        raw = secret.encode("utf-8", "surrogateescape")
        parts += [quote(raw, safe=""), quote(raw), quote_plus(raw)]
        parts += [
            json.dumps(part, ensure_ascii=escaped)[1:-1]
            for part in parts
            for escaped in (True, False)
        ]
        new = []
        with self._lock:
            for part in parts:
                if part.strip() and part not in self._secrets:
                    self._secrets.add(part)
                    new.append(part)
            self._longest_first = tuple(sorted(self._secrets, key=len, reverse=True))
        return new

    def __call__(self, text: str) -> str:
        secrets = self._longest_first  # a snapshot: other threads may add secrets meanwhile
        for secret in secrets:
            text = text.replace(secret, REDACTED)
            if TRUNCATED in text:
                text = _redact_cut_secret(text, secret)
        return text


def _redact_cut_secret(text: str, secret: str) -> str:
    """Hide the start of a secret that a length cap cut off (`abc…` for `abcdef`), at
    whatever length each cut left. Only where the secret's first characters occur is
    anything compared: a log of 50,000 lines costs one search per secret."""
    if len(secret) <= MIN_CUT_LENGTH:
        return text  # a cut of it would be shorter than MIN_CUT_LENGTH
    head = secret[:MIN_CUT_LENGTH]
    pieces: list[str] = []
    done = 0
    position = text.find(head)
    while position >= 0:
        matched = MIN_CUT_LENGTH
        while (
            matched < len(secret) - 1
            and position + matched < len(text)
            and text[position + matched] == secret[matched]
        ):
            matched += 1
        end = position + matched
        if text.startswith(TRUNCATED, end):
            pieces += [text[done:position], REDACTED]
            done = end
        position = text.find(head, max(end, position + 1))
    return "".join([*pieces, text[done:]]) if pieces else text


def inert(text: str) -> str:
    """Text whose lines the runner will not take for workflow commands.

    The runner reads a line as a command when it starts with `::` once leading
    whitespace is trimmed, or when it holds `##[` anywhere (the older syntax);
    a backslash in front keeps such data readable and harmless.
    """
    if "::" not in text and "##[" not in text:
        return text
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        body = line.lstrip()
        safe = line[: len(line) - len(body)] + "\\" + body if body.startswith("::") else line
        lines[index] = safe.replace("##[", "##\\[")
    return "".join(lines)


# Characters that change how text reads without being seen: control characters (an
# escape sequence colours or hides the runner's log), bidirectional overrides and
# isolates (U+202E makes `exe.txt` read `txt.exe`), zero-width and other format
# characters (Unicode's Cc, Cf, Zl and Zp, but tab and line ends), and the blank
# fillers that render as nothing; and halves of a character (lone surrogates, which a
# JSON or YAML escape can spell and UTF-8 cannot write). Data shows them as `[U+202E]`;
# tests check this list against unicodedata, so a newer Unicode cannot slip one past it.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f"
    "\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)


def visible(text: str) -> str:
    """Data with every invisible character shown as its code point, not obeyed."""
    return _INVISIBLE.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def json_visible(text: str) -> str:
    """JSON text whose invisible characters are written as \\u escapes (the same data)."""
    return _INVISIBLE.sub(lambda match: json.dumps(match.group())[1:-1], text)
