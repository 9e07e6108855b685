"""Reading a targets file: written in a hurry, or by an attacker, it never hangs or crashes us.

Only a regular file is read (a named pipe or a device would block or never end),
and only so much of it. YAML is read to its node tree, never constructed by
PyYAML: every ID stays the text the user wrote. A plain scalar that YAML 1.1
would turn into something else (`0123` into 83, `1:20` into 80, `yes` into
true) is refused with "quote it", and so are duplicate keys.

The YAML is parsed by libyaml where PyYAML was built with it (its pure-Python parser
takes seconds over a file under the size cap). First its events are counted, which
takes no stack: a file with more nodes than 100 targets can hold, or nested deeper than
one can be, is refused at the first event past the limit, so the time spent is bounded
whatever the file; libyaml's composer recurses, and a file of nested brackets under the
cap would overflow the C stack. Only then is the node tree composed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from .errors import shown
from .guard_inputs import GUARD_INPUTS

# libyaml's loader where present; the same resolution of tags (YAML 1.1's), in C.
_LOADER: type[yaml.SafeLoader | yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A hundred short entries fit in a few kilobytes; anything much bigger is a mistake.
MAX_TARGETS_FILE_BYTES = 256 * 1024
MAX_TARGETS = 100
TARGET_KEYS = (
    *("name", "app-id", "flight-id", "submission-id", "all-flights", "expected-version"),
    *GUARD_INPUTS,
)
FLAG_KEYS = frozenset({"all-flights"})
# Numbers an entry may write unquoted (`failure-ratio: 2.5`): the guard's thresholds.
NUMBER_KEYS = frozenset({"failure-ratio", "min-failing-devices"})
# Keys that, once written, must say something: an empty flight-id is not "the app's own
# rollout", and an empty expected-version (a pipeline's unset variable) is not "no guard".
NOT_EMPTY_KEYS = {
    "flight-id": "give the flight's GUID, or leave the key out to halt the app's own rollout",
    "expected-version": 'give the version (quoted, like "1.4.2.0"), or leave the key out',
    # An unset variable must not turn a guard into an emergency stop, or loosen it.
    "halt-when": "give now or failing, or leave the key out to use the run's",
    "failure-ratio": "give a number, or leave the key out to use the run's",
    "min-failing-devices": "give a whole number, or leave the key out to use the run's",
    "event-types": "give crash, hang, memory or jse, or leave the key out to use the run's",
}
MAX_NAME_CHARS = 200

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_PLAIN_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_EXAMPLE = re.compile(r"[A-Za-z0-9:.+_-]{1,40}")
_TRUE_TEXT = frozenset({"true", "True", "TRUE"})
_FALSE_TEXT = frozenset({"false", "False", "FALSE"})

Entry = dict[str, str | bool]

# 100 targets with every key (TARGET_KEYS) are about 2,100 nodes nested 4 deep: a file
# that holds more than this, or nests far deeper, is not a targets file.
MAX_NODES = 3000
MAX_DEPTH = 40
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_OPENING = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSING = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def read_targets_file(path_text: str, workspace: Path | None, problems: list[str]) -> list[Entry]:
    """The entries of a targets file, as raw text per key; problems are appended."""
    source = shown(path_text)
    data = _read_regular_file(path_text, workspace, problems)
    if data is None:
        return []
    try:
        too_large = _too_large(data)
        if too_large:
            problems.append(f"targets file {source} {too_large}")
            return []
        root = yaml.compose(data, Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(f"targets file {source} is not valid YAML{at}")
        return []
    except RecursionError:
        problems.append(f"targets file {source} is nested too deeply to be a targets file")
        return []
    return _entries(root, source, problems)


def _too_large(data: bytes) -> str | None:
    """What makes the YAML more than a targets file can be, read from its events up to
    the first one past a limit; None when it is within them."""
    nodes = depth = 0
    for event in yaml.parse(data, Loader=_LOADER):
        if isinstance(event, _NODE_EVENTS):
            nodes += 1
            if nodes > MAX_NODES:
                return (
                    f"holds more than {MAX_NODES} YAML values, far more than {MAX_TARGETS} "
                    f"targets need: at most {MAX_TARGETS} targets fit in one run (split it "
                    "across jobs)"
                )
        if isinstance(event, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                return "is nested too deeply to be a targets file"
        elif isinstance(event, _CLOSING):
            depth -= 1
    return None


def _read_regular_file(path_text: str, workspace: Path | None, problems: list[str]) -> bytes | None:
    source = shown(path_text)
    path = Path(path_text)
    try:
        if workspace is not None:
            path = (workspace / path_text).resolve()
            if not path.is_relative_to(workspace.resolve()):
                problems.append(f"targets {source} points outside the workspace ({workspace})")
                return None
        # Non-blocking: opening a named pipe must not wait for a writer.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        descriptor = os.open(path, flags)
    except (OSError, RuntimeError, ValueError) as error:  # RuntimeError: a symlink loop
        why = error.strerror if isinstance(error, OSError) and error.strerror else "bad path"
        problems.append(f"targets file {source} cannot be read: {why}")
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"targets file {source} is not a regular file")
            return None
        if info.st_size > MAX_TARGETS_FILE_BYTES:
            problems.append(f"targets file {source} is larger than {MAX_TARGETS_FILE_BYTES} bytes")
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_TARGETS_FILE_BYTES:
            chunk = os.read(descriptor, MAX_TARGETS_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        problems.append(f"targets file {source} cannot be read: {error.strerror}")
        return None
    finally:
        os.close(descriptor)
    if size > MAX_TARGETS_FILE_BYTES:  # it grew while we read it
        problems.append(f"targets file {source} is larger than {MAX_TARGETS_FILE_BYTES} bytes")
        return None
    return b"".join(chunks)


def _entries(root: yaml.Node | None, source: str, problems: list[str]) -> list[Entry]:
    """`targets:` with a list of mappings (or the list itself), checked node by node."""
    items = root
    if isinstance(root, yaml.MappingNode):
        items = None
        unknown = []
        for key, value in _pairs(root, f"targets file {source}: ", problems):
            if key == "targets":
                items = value
            else:
                unknown.append(shown(key, 30).strip("'\""))
        if unknown:
            problems.append(
                f"targets file {source} has unknown top-level keys: {', '.join(unknown)}"
            )
    if not isinstance(items, yaml.SequenceNode) or not items.value:
        problems.append(f"targets file {source} must hold a non-empty list under `targets:`")
        return []
    if len(items.value) > MAX_TARGETS:
        problems.append(
            f"targets file {source} lists {len(items.value)} targets; at most {MAX_TARGETS} "
            "fit in one run (split it across jobs)"
        )
        return []
    entries: list[Entry] = []
    for number, node in enumerate(items.value, start=1):
        where = f"targets entry {number}: "
        if not isinstance(node, yaml.MappingNode):
            problems.append(f"{where}must be a mapping with app-id (and flight-id, submission-id)")
            continue
        count = len(problems)
        entry: Entry = {}
        pairs = _pairs(node, where, problems)
        unknown = [shown(key, 30).strip("'\"") for key, _ in pairs if key not in TARGET_KEYS]
        if unknown:
            # A typo such as flight_id would otherwise halt the app instead of the flight.
            problems.append(
                f"{where}unknown keys {', '.join(unknown)} (allowed: {', '.join(TARGET_KEYS)})"
            )
            continue
        for key, value in pairs:
            if key in FLAG_KEYS:
                flag = _flag(key, value, where, problems)
                if flag is not None:
                    entry[key] = flag
                continue
            before = len(problems)
            text = _text(key, value, where, problems)
            if not text and key in NOT_EMPTY_KEYS and len(problems) == before:
                problems.append(f"{where}{key} is empty: {NOT_EMPTY_KEYS[key]}")
            elif text is not None:
                entry[key] = text
        if len(problems) == count:
            entries.append(entry)
    return entries


def _pairs(node: yaml.MappingNode, where: str, problems: list[str]) -> list[tuple[str, yaml.Node]]:
    """A mapping's (key, value) pairs; non-text keys and repeated keys are problems."""
    pairs: list[tuple[str, yaml.Node]] = []
    seen: set[str] = set()
    for key_node, value in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            text = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
            problems.append(f"{where}key {shown(str(text))} is not a plain name")
            continue
        key = key_node.value
        if key in seen:
            problems.append(f"{where}duplicate key: {key} is given twice")
            continue
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _text(key: str, node: yaml.Node, where: str, problems: list[str]) -> str | None:
    """A value as the text the user wrote; None for an empty value (or a problem)."""
    if key == "event-types" and isinstance(node, yaml.SequenceNode):
        # One level only: an anchor can make a list hold itself (`&a [*a]`).
        if not all(isinstance(item, yaml.ScalarNode) for item in node.value):
            problems.append(f"{where}{key} must be a list of words, not of lists or mappings")
            return None
        kinds = [_text(key, item, where, problems) for item in node.value]
        return ",".join(kind or "" for kind in kinds) if None not in kinds else None
    if not isinstance(node, yaml.ScalarNode):
        problems.append(f"{where}{key} must be a string, not a list or a mapping")
        return None
    text = str(node.value)
    # Plain style: None from PyYAML's parser, "" from libyaml's.
    if key in NUMBER_KEYS and node.tag in (_INT, _FLOAT) and not node.style:
        return text  # read as the number written: the guard's checks say if it is one
    if node.tag == _NULL and not node.style:
        return None  # `flight-id:` or `flight-id: ~`: not given
    if node.tag == _INT and not node.style and _PLAIN_DECIMAL.fullmatch(text):
        return text  # 1152921504621243680 unquoted: YAML's number is the same text
    if node.tag != _STR:
        kind = node.tag.rsplit(":", 1)[-1]
        # The example repeats the text only where it is a plain word (YAML 1.1's `0123`):
        # an explicit tag can carry any text, a newline or a secret included.
        example = f' ({key}: "{text}")' if _EXAMPLE.fullmatch(text) else ""
        problems.append(
            f"{where}{key} must be a string: YAML reads {shown(text)} as a {kind}, not as the "
            f"text written; quote it{example}"
        )
        return None
    text = text.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        problems.append(f"{where}{key} contains a newline or another control character")
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        # "\ud800" in a quoted YAML string: half a character, which no file can hold.
        problems.append(f"{where}{key} contains half of a character (a lone surrogate escape)")
        return None
    if key == "name" and len(text) > MAX_NAME_CHARS:
        problems.append(f"{where}name is longer than {MAX_NAME_CHARS} characters")
        return None
    return text


def _flag(key: str, node: yaml.Node, where: str, problems: list[str]) -> bool | None:
    """true or false (YAML 1.2's spellings); anything else is a problem."""
    text = node.value if isinstance(node, yaml.ScalarNode) else ""
    if isinstance(node, yaml.ScalarNode) and node.tag in (_BOOL, _STR):
        if text in _TRUE_TEXT:
            return True
        if text in _FALSE_TEXT:
            return False
    problems.append(f"{where}{key} must be true or false, not {shown(str(text))}")
    return None
