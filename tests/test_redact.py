"""Secrets never appear (rule 8): a secret is hidden whole, line by line, JSON-escaped, and
where a cap cut it."""

from __future__ import annotations

import json

from halt_rollout.errors import one_line
from halt_rollout.redact import Redactor


def test_whole_and_line_by_line() -> None:
    redact = Redactor()
    redact.add("first-line\nsecond-line")
    assert redact("a first-line\nsecond-line b") == "a *** b"
    assert redact("only second-line here") == "only *** here"


def test_json_escaped_forms() -> None:
    redact = Redactor()
    secret = 'q"uo\\te-é~'
    redact.add(secret)
    for ensure_ascii in (True, False):
        encoded = json.dumps({"error": f"bad {secret}"}, ensure_ascii=ensure_ascii)
        assert "uo" not in redact(encoded)


def test_a_secret_cut_by_the_length_cap() -> None:
    redact = Redactor()
    secret = "Abc~defGHIjklMNOpqrSTUvwx"
    redact.add(secret)
    text = one_line("x" * 280 + secret, limit=290)
    assert text.endswith("…")
    assert "Abc~def" not in redact(text)
    assert redact(text).endswith("***…")


def test_returns_only_new_parts_and_ignores_blank_ones() -> None:
    redact = Redactor()
    assert redact.add("token-1") == ["token-1"]
    assert redact.add("token-1") == []
    assert redact.add("  ") == []


def test_a_secret_cut_at_several_lengths_is_hidden_at_each() -> None:
    """Rule 8: a secret a cap cut short is hidden wherever it was cut, at any length; in
    a log block of thousands of lines, each cut is found (and nothing else is touched)."""
    redact = Redactor()
    secret = "Zq8~longSecretValue_ThatWasCut"
    redact.add(secret)
    lines = [f"line {n}: {secret[: 4 + n % 20]}… and plain text…" for n in range(5000)]
    shown = redact("\n".join(lines)).split("\n")
    assert all(secret[:4] not in line for line in shown)
    assert shown[0] == "line 0: ***… and plain text…"
    assert redact("Zq8~ alone, not cut") == "Zq8~ alone, not cut"
