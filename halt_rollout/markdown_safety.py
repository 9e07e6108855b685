"""Data shown in Markdown: never a link, an image or HTML.

In the summary, text that comes from data (target names, IDs, the Store's and Entra's
messages) is only ever shown as code. Every piece of data is redacted first (the run's
secrets), then its invisible characters are made visible, and only then quoted (in code,
shown as written) or defused (in prose), so that nothing inserted can split a secret past
the redaction."""

from __future__ import annotations

import re

from .redact import visible

_BACKTICKS = re.compile(r"`+")


# What a Markdown renderer could make live in data shown outside code (prose): links,
# images, HTML and GFM's autolinks. A zero-width space inside each keeps the text as it
# reads and breaks the trigger. Inside code nothing is live, so code shows data as written:
# a URL in a reason or a Store message stays copyable.
# GFM also links an e-mail address (and `mailto:`/`xmpp:` ones): a break after its `@`.
_TRIGGERS = (
    *(("](", "]\u200b("), ("![", "!\u200b["), ("<", "<\u200b"), ("://", ":\u200b//")),
    ("@", "@\u200b"),
)


# GFM links `www.` after a space, `*`, `_`, `~` or `(`: every one is broken, not only at a word
# boundary (`_` is a word character).
_WWW = re.compile(r"(?i)(www)\.")


# Markdown's punctuation, escaped where our own words carry data outside code.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>!|~])")


def defused(text: str) -> str:
    for trigger, broken in _TRIGGERS:
        text = text.replace(trigger, broken)
    return _WWW.sub("\\1\u200b.", text)


def as_plain(text: str) -> str:
    """Data as plain text in a line of prose: every Markdown character escaped."""
    flat = " ".join(visible(text).split())
    return defused(_MARKDOWN_PUNCTUATION.sub(r"\\\1", flat))


def as_code(text: str) -> str:
    """Data as an inline code span: nothing in it is live Markdown or HTML."""
    flat = " ".join(visible(str(text)).split())
    if not flat:
        return "–"
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def as_fenced(text: str) -> list[str]:
    """Data as a fenced code block, its fence longer than any run of backticks in it."""
    lines = [visible(line) for line in text.splitlines() if line.strip()]
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *lines, fence]


def as_cell(text: str | None) -> str:
    """Data in a table cell: one line, as code, with its pipes escaped for the table."""
    if text is None:
        return "–"
    return as_code(text).replace("|", "\\|")
