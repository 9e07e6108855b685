"""A targets file written in a hurry or with malice is read safely or refused (the
contract's "Several targets", rules 1 and 9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from halt_rollout import targets_file
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    FLIGHT_ID,
    OTHER_APP,
    OTHER_SUBMISSION,
    PUBLISHED,
    RunAction,
)
from .world import (
    World,
    describe,
    traceback_free,
)

# 4. Hostile targets files (the targets-file rules, rule 9) --------------------------------


def _refused_before_any_request(run: ActionRun, world: World) -> None:
    assert traceback_free(run), run.stdout[-600:]
    assert run.exit_code == 1, describe(run)
    assert len(run.errors) == 1, run.errors
    assert world.emulator.requests == [], [r.path for r in world.emulator.requests]
    assert run.outputs["result"] == "failed"


def _targets(world: World, content: str | bytes, **inputs: str) -> ActionRun:
    path = world.next_workspace() / "targets.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return world.run({"app-id": None, "targets": "targets.yml", **inputs}, timeout=120)


def test_deeply_nested_targets_file_is_refused_not_a_crash(world: World) -> None:
    run = _targets(world, "targets: " + "[" * 20_000 + "]" * 20_000 + "\n")
    print(f"deep YAML: {describe(run)}")
    _refused_before_any_request(run, world)


def test_targets_file_with_more_than_100_targets_is_refused(world: World) -> None:
    entries = "".join(
        f'  - app-id: {APP_ID}\n    submission-id: "{number}"\n' for number in range(101)
    )
    run = _targets(world, "targets:\n" + entries, **{"timeout-seconds": "5"})
    print(f"101 targets: {describe(run, 5)}; {len(world.emulator.store_requests)} Store requests")
    _refused_before_any_request(run, world)
    assert "100" in run.errors[0]


def test_summary_stays_under_1_mib_with_aliased_long_names(world: World) -> None:
    """Billion laughs, the kind that works on strings: one 100 kB name, 100 aliases to it."""
    big = "N" * 100_000
    entries = "".join(
        f'  - name: *big\n    app-id: {APP_ID}\n    submission-id: "{number}"\n'
        for number in range(1, 100)
    )
    # The anchor sits on the first entry: a top-level key would be refused as unknown.
    content = (
        f'targets:\n  - name: &big {big}\n    app-id: {APP_ID}\n    submission-id: "0"\n' + entries
    )
    run = _targets(world, content, **{"timeout-seconds": "10"})
    size = len(run.summary.encode())
    print(
        f"aliased names: file {len(content.encode())} bytes; {describe(run)}; summary "
        f"{size} bytes, stdout {len(run.stdout)} bytes"
    )
    assert traceback_free(run)
    assert size < 1024 * 1024, f"summary is {size} bytes"


YAML_11_IDS = [
    ("submission-id", "0123", "83"),
    ("submission-id", "0x1F", "31"),
    ("submission-id", "1:20", "80"),
    ("submission-id", "1_000", "1000"),
    ("submission-id", "+12", "12"),
    ("submission-id", "0b11", "3"),
    ("app-id", "0x1F", "31"),
]


@pytest.mark.parametrize(
    ("key", "written", "read"), YAML_11_IDS, ids=[f"{k}: {w}" for k, w, _ in YAML_11_IDS]
)
def test_yaml_11_reading_of_an_id_is_refused_with_quote_it(
    world: World, key: str, written: str, read: str
) -> None:
    entry = {"app-id": APP_ID, key: written}
    content = "targets:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in entry.items()) + "\n"
    run = _targets(world, content)
    sent = [f"{r.method} {r.path}" for r in world.emulator.store_requests]
    print(f"{key}: {written} (YAML 1.1: {read}): {describe(run)}; sent {sent}")
    _refused_before_any_request(run, world)
    assert "quote" in run.errors[0].lower()


@pytest.mark.parametrize(
    "written", ["0o17", ".inf", "12.0", "1e3", "yes", "~"], ids=lambda w: f"submission-id: {w}"
)
def test_other_odd_submission_ids_are_refused(world: World, written: str) -> None:
    run = _targets(world, f"targets:\n  - app-id: {APP_ID}\n    submission-id: {written}\n")
    print(f"submission-id: {written}: {describe(run)}")
    if written == "~":  # null: as if the key were absent, the last published one is used
        assert run.outputs["result"] == "halted", describe(run)
        return
    _refused_before_any_request(run, world)


DUPLICATES = {
    "duplicate app-id in an entry": (f"targets:\n  - app-id: {OTHER_APP}\n    app-id: {APP_ID}\n"),
    "duplicate targets key": (
        f"targets:\n  - app-id: {OTHER_APP}\ntargets:\n  - app-id: {APP_ID}\n"
    ),
    "duplicate submission-id": (
        f'targets:\n  - app-id: {APP_ID}\n    submission-id: "{OTHER_SUBMISSION}"\n'
        f'    submission-id: "{PUBLISHED}"\n'
    ),
}


@pytest.mark.parametrize("content", list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_duplicate_keys_are_refused(world: World, content: str) -> None:
    run = _targets(world, content)
    sent = [f"{r.method} {r.path}" for r in world.emulator.halt_requests]
    print(f"duplicate keys: {describe(run)}; halts sent: {sent}")
    _refused_before_any_request(run, world)
    assert "duplicate" in run.errors[0].lower()


REFUSED_FILES: dict[str, bytes] = {
    "two YAML documents": f"targets:\n  - app-id: {APP_ID}\n---\ntargets: []\n".encode(),
    "tab indentation": f"targets:\n\t- app-id: {APP_ID}\n".encode(),
    "not UTF-8 (Latin-1 name)": f"targets:\n  - name: Caf\xe9\n    app-id: {APP_ID}\n".encode(
        "latin-1"
    ),
    "NUL byte": f"targets:\n  - app-id: {APP_ID}\x00\n".encode(),
    "aliases of lists (billion laughs)": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"targets: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    ),
}


@pytest.mark.parametrize("content", list(REFUSED_FILES.values()), ids=list(REFUSED_FILES))
def test_malformed_targets_file_is_refused_cleanly(world: World, content: bytes) -> None:
    run = _targets(world, content)
    print(f"malformed file: {describe(run)}")
    _refused_before_any_request(run, world)


ACCEPTED_FILES: dict[str, bytes] = {
    "UTF-8 BOM": b"\xef\xbb\xbf" + f"targets:\n  - app-id: {APP_ID}\n".encode(),
    "CRLF line ends": f"targets:\r\n  - app-id: {APP_ID}\r\n".encode(),
    "UTF-16 with BOM": f"targets:\n  - app-id: {APP_ID}\n".encode("utf-16"),
}


@pytest.mark.parametrize("content", list(ACCEPTED_FILES.values()), ids=list(ACCEPTED_FILES))
def test_targets_file_in_other_encodings_and_line_ends_works(world: World, content: bytes) -> None:
    run = _targets(world, content)
    print(f"accepted file: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


# Targets that reach the same rollout are one rollout (contract, "Several targets") --------


def _rows(run: ActionRun) -> list[tuple[str, str]]:
    return [(r["name"] or r["app-id"], r["result"]) for r in json.loads(run.outputs["results"])]


@pytest.mark.parametrize(
    "second",
    [
        f'  - name: by submission\n    app-id: {APP_ID}\n    submission-id: "{PUBLISHED}"\n',
        f"  - name: whole app\n    app-id: {APP_ID}\n    all-flights: true\n",
    ],
    ids=["by-its-submission", "with-all-flights"],
)
def test_a_rollout_listed_twice_is_halted_once_and_reported_once(world: World, second: str) -> None:
    """The app plainly, and again by its submission (known only once the app is read) or
    with all-flights: one halt of its rollout, one row, never "someone else halted it"."""
    content = f"targets:\n  - name: plainly\n    app-id: {APP_ID}\n{second}"
    run = _targets(world, content)
    rows = _rows(run)
    halts = [r.path for r in world.emulator.halt_requests]
    app_halts = [p for p in halts if "/flights/" not in p]
    print(f"listed twice: {describe(run)}; rows {rows}; halts {halts}")
    assert run.exit_code == 0, describe(run)
    assert len(app_halts) == 1, halts
    assert (
        sum(1 for p in rows if p[1] in ("halted", "already-halted") and "flight" not in p[0]) == 1
    )
    assert [result for _, result in rows].count("already-halted") == 0, rows
    assert "someone else" not in run.stdout
    assert "worked on and reported once" in run.stdout


def test_a_flight_by_id_and_by_all_flights_is_halted_once(world: World) -> None:
    content = (
        f"targets:\n  - name: the flight\n    app-id: {APP_ID}\n    flight-id: {FLIGHT_ID}\n"
        f"  - name: whole app\n    app-id: {APP_ID}\n    all-flights: true\n"
    )
    run = _targets(world, content)
    flight_halts = [r for r in world.emulator.halt_requests if FLIGHT_ID in r.path]
    rows = _rows(run)
    print(f"flight twice: {describe(run)}; rows {rows}")
    assert run.exit_code == 0, describe(run)
    assert len(flight_halts) == 1
    assert len(rows) == 2, rows  # the app's own rollout and the flight, once each
    assert "already-halted" not in [result for _, result in rows]


@pytest.mark.parametrize(
    "second",
    [
        f'  - app-id: {APP_ID}\n    submission-id: "{PUBLISHED}"\n',
        f"  - app-id: {APP_ID}\n    all-flights: true\n",
        f"  - app-id: {APP_ID}\n    all-flights: true\n    expected-version: 9.9.9.9\n",
    ],
    ids=["by-submission", "all-flights", "all-flights-another-version"],
)
def test_entries_that_would_guard_one_rollout_differently_are_refused(
    world: World, second: str
) -> None:
    """One entry with expected-version, one that may reach the same rollout without it
    (or with another): refused before anything is sent, as exact duplicates are."""
    content = f"targets:\n  - app-id: {APP_ID}\n    expected-version: 1.4.2.0\n{second}"
    run = _targets(world, content)
    print(f"guarded differently: {describe(run)}")
    _refused_before_any_request(run, world)
    assert "may reach the same rollout" in run.errors[0]
    assert "expected-version" in run.errors[0]


def test_pathological_targets_file_aliases_and_nesting(action: RunAction) -> None:
    deep = "targets:\n  - app-id: " + "[" * 5000 + "]" * 5000 + "\n"
    run = action({"app-id": "", "targets": "t.yml"}, files={"t.yml": deep})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    aliases = "a: &a [" + ",".join(["x"] * 50) + "]\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        aliases += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 50) + "]\n"
    aliases += "targets: *j\n"
    run = action({"app-id": "", "targets": "t2.yml"}, files={"t2.yml": aliases})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"


# Parsing keeps the deadline: its work is bounded, whatever the file under the cap holds.

ENTRY = f"  - name: Contoso Desktop\n    app-id: {APP_ID}\n"
LARGE_FILES: dict[str, str] = {
    "thousands of entries": "targets:\n" + ENTRY * 5000,
    "a flow list of mappings": "targets: [" + ", ".join([f"{{app-id: {APP_ID}}}"] * 9000) + "]\n",
    "one entry of 100,000 scalars": "targets:\n  - [" + ",".join(["a"] * 100_000) + "]\n",
    "tagged scalars": "targets:\n  - [" + ",".join(["!!str a"] * 30_000) + "]\n",
    "60,000 aliases": "targets:\n  - &a x\n  - [" + ", ".join(["*a"] * 60_000) + "]\n",
    "brackets 100,000 deep": "targets: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "tagged brackets 30,000 deep": "targets: " + "!!seq [" * 30_000 + "]" * 30_000 + "\n",
}


@pytest.mark.parametrize("content", list(LARGE_FILES.values()), ids=list(LARGE_FILES))
def test_a_targets_file_under_the_cap_is_read_in_bounded_work(
    content: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The targets-file rules and rule 7a: a file under the 256 KiB cap is refused after
    reading at most MAX_NODES of its YAML events (libyaml's parser, where present),
    never composed whole: no time grows with its size, and no depth reaches libyaml's
    recursive composer (which a file of nested brackets would crash)."""
    assert len(content.encode()) <= targets_file.MAX_TARGETS_FILE_BYTES
    pulled = []
    real_parse = yaml.parse

    def counting(stream: Any, Loader: Any) -> Iterator[Any]:
        for event in real_parse(stream, Loader=Loader):
            pulled.append(event)
            yield event

    composed = []
    monkeypatch.setattr(yaml, "parse", counting)
    monkeypatch.setattr(yaml, "compose", lambda *args, **kwargs: composed.append(1))
    path = tmp_path / "targets.yml"
    path.write_text(content, encoding="utf-8")
    problems: list[str] = []

    assert targets_file.read_targets_file(str(path), None, problems) == []

    assert len(problems) == 1, problems
    assert "targets file" in problems[0]
    assert "more than 3000 YAML values" in problems[0] or "nested too deeply" in problems[0]
    assert len(pulled) <= 2 * targets_file.MAX_NODES + 10
    assert composed == [], "a file past the limits was composed whole"


def test_the_targets_file_is_parsed_by_libyaml_where_present() -> None:
    if yaml.__with_libyaml__:
        assert targets_file._LOADER is yaml.CSafeLoader


def test_a_full_targets_file_is_still_read_whole(world: World) -> None:
    """100 targets, names and all, are well within the limits."""
    entries = "".join(
        f'  - name: "Contoso {n} ({"x" * 150})"\n    app-id: {APP_ID}\n'
        f'    submission-id: "{n}"\n    expected-version: "1.4.2.0"\n'
        for n in range(100)
    )
    path = world.next_workspace() / "targets.yml"
    path.write_text("targets:\n" + entries, encoding="utf-8")
    problems: list[str] = []
    entries_read = targets_file.read_targets_file(str(path), None, problems)
    assert problems == []
    assert len(entries_read) == 100
