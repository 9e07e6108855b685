"""Data stays data (rule 8): text from data never becomes a workflow command, live Markdown,
or invisible instructions.

"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from halt_rollout import main
from halt_rollout.cancel import Cancellation
from halt_rollout.markdown_safety import as_plain
from halt_rollout.redact import visible as visible_form
from store_emulator import Emulator, Fault
from store_emulator.step_results import ActionRun, parse_file_command

from .conftest import (
    APP_ID,
    RunAction,
)
from .world import (
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
    injected_commands,
    json_answer,
    live_markdown,
    refuses_every_halt,
)

# 5. Data stays data (rule 8) ---------------------------------------------------------------

HOSTILE_NAMES = [
    "::error::pwned",
    "##[error]pwned",
    "Desktop ##[warning]pwned",
    "\u00a0::warning::pwned",  # a no-break space survives str.strip(); C#'s TrimStart drops it
    "[click me](https://evil.example/x)",
    "![pixel](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png>",
    "https://evil.example/bare",
    "<https://evil.example/autolink>",
    "www.evil.example",
    "`code` | pipe | [x]",
]


def _named_targets(name: str) -> str:
    return f"targets:\n  - name: {json.dumps(name)}\n    app-id: {APP_ID}\n"


# What GFM's autolink extension links in prose besides URLs: e-mail addresses (bare, or
# after mailto: or xmpp:), and `www.` after `_`, `*`, `~` or `(` as well as after a space.
PROSE_AUTOLINKS = [
    "ops@contoso.example",
    "mailto:ops@contoso.example",
    "xmpp:ops@contoso.example",
    "1.4.2.0_www.evil.example",
    "*www.evil.example*",
    "(www.evil.example)",
    "~www.evil.example",
]


@pytest.mark.parametrize("text", PROSE_AUTOLINKS)
def test_data_in_prose_is_never_an_autolink(text: str) -> None:
    """Contract rule 10: data shown outside code (the guard's decision sentence carries the
    Store's package versions) renders as text, never a link, with GitHub's renderer."""
    assert_renders_as_text(f"Decision: {as_plain(text)}.")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_target_name_stays_data_in_the_log_and_the_summary(world: World, name: str) -> None:
    run = world.run(
        {"app-id": None, "targets": "targets.yml"}, files={"targets.yml": _named_targets(name)}
    )
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"name {name!r}: {describe(run)}; commands {injected[:2]}; live Markdown {live}")
    assert run.outputs["result"] == "halted", describe(run)
    assert injected == [], injected
    assert live == [], [line for line in run.summary.splitlines() if name[:6] in line]


PAYLOAD = (
    "Rejected. [click me](https://evil.example/x) ![pixel](https://evil.example/p.png) "
    "<img src=x> https://evil.example/bare www.evil.example\n::error::pwned\n"
    "  ::warning::pwned ##[error]pwned"
)


@pytest.mark.parametrize("field", ["message", "code", "MS-CorrelationId"])
def test_store_message_stays_data_in_the_log_and_the_summary(world: World, field: str) -> None:
    body: dict[str, Any] = {"code": "InvalidState", "message": "Not haltable."}
    headers = {}
    if field == "MS-CorrelationId":  # a header holds no newline
        headers[field] = PAYLOAD.replace("\n", " ")
    else:
        body[field] = PAYLOAD
    refuses_every_halt(world.emulator, body, headers=headers)
    run = world.run()
    assert_stays_data(run, f"Store {field}")
    # The refusal was shown, not left out: escaped, never dropped.
    shown = "Rejected." if field == "message" else "Not haltable."
    assert any("HTTP 409" in e and shown in e for e in run.errors), run.errors
    assert shown in run.summary, run.summary


def assert_stays_data(run: ActionRun, what: str) -> None:
    """The run failed, and what it was fed made neither a command nor live Markdown."""
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"{what} with payload: {describe(run)}; commands {injected}; live {live}")
    assert run.exit_code == 1
    assert injected == [], injected
    assert live == [], live


def entra_refusing_with_payload(req: Incoming, wire: Wire) -> None:
    """Entra refuses the sign-in, its description carrying the hostile PAYLOAD."""
    if req.path.endswith("/oauth2/v2.0/token"):
        body = {"error": "invalid_client", "error_description": f"AADSTS7000215: {PAYLOAD}"}
        wire.send(json_answer(401, body))
    else:
        forward_everything(req, wire)


def test_entra_message_stays_data_in_the_log_and_the_summary(world: World) -> None:
    assert_stays_data(
        world.run(authority=world.hostile(entra_refusing_with_payload)), "Entra message"
    )


# What GitHub renders: the summary through cmark-gfm, with GitHub's extensions -------------

# The HTML our own Markdown makes: headings, paragraphs, lists, the table, code, emphasis,
# and links to Partner Center and to the run (built from checked IDs, never from data).
OUR_TAGS = frozenset(
    {"h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre"}
    | {"strong", "em"}
)
OUR_HREFS = re.compile(
    r"https://partner\.microsoft\.com/dashboard/products/[A-Za-z0-9]+/(?:overview|submissions/[0-9]+)"
    r"|https://github\.com/octo-org/octo-repo/actions/runs/[0-9]+(?:/attempts/[0-9]+)?"
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") or ""
        if tag == "a" and OUR_HREFS.fullmatch(href):
            return  # one of ours
        self.found.append(tag)


def rendered_live(summary: str) -> list[str]:
    """The elements GitHub would render from the summary that our Markdown does not make:
    links, images, raw HTML. Rendered with GitHub's own renderer (cmark-gfm, its table,
    autolink, strikethrough and tag-filter extensions), unsafe HTML kept so none hides."""
    html = cmarkgfm.github_flavored_markdown_to_html(summary, options=Options.CMARK_OPT_UNSAFE)
    parser = _Tags()
    parser.feed(html)
    return [tag for tag in parser.found if tag not in OUR_TAGS]


def assert_renders_as_text(summary: str) -> None:
    live = rendered_live(summary)
    assert live == [], (live, summary[:2000])
    assert live_markdown(summary) == []


def test_the_renderer_check_can_fail() -> None:
    assert rendered_live("[x](https://e.example) <b>y</b> ![p](i.png) www.e.example") == [
        "a",
        "b",
        "img",
        "a",
    ]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_summary_of_a_halt_renders_names_as_text(world: World, name: str) -> None:
    run = world.run(
        {"app-id": None, "targets": "targets.yml"}, files={"targets.yml": _named_targets(name)}
    )
    assert run.outputs["result"] == "halted"
    assert_renders_as_text(run.summary)


HTML_PAYLOAD = "[x](https://evil.example) <img src=x> <b>bold</b> www.evil.example"


@pytest.mark.parametrize(
    "inputs",
    [
        {"app-id": HTML_PAYLOAD},
        {"flight-id": HTML_PAYLOAD},
        {"store-api-url": f"http://evil.example/{HTML_PAYLOAD}"},
        {"timeout-seconds": HTML_PAYLOAD},
        {"app-id": None, "targets": "targets.yml"},
    ],
    ids=["app-id", "flight-id", "store-api-url", "timeout-seconds", "targets file"],
)
def test_summary_of_a_refused_input_renders_data_as_text(
    world: World, inputs: dict[str, str | None]
) -> None:
    targets = f"targets:\n  - app-id: {json.dumps(HTML_PAYLOAD)}\n    name: {HTML_PAYLOAD!r}\n"
    run = world.run(inputs, files={"targets.yml": targets})
    assert run.exit_code == 1
    assert "Invalid input" in run.summary
    assert "evil" in run.summary  # the data is there, as text
    assert_renders_as_text(run.summary)
    assert injected_commands(run.stdout) == []


def test_summary_of_a_failed_sign_in_renders_data_as_text(world: World) -> None:
    run = world.run(authority=world.hostile(entra_refusing_with_payload))
    assert run.exit_code == 1
    assert "AADSTS7000215" in run.summary
    assert_renders_as_text(run.summary)


def test_summary_of_a_store_refusal_renders_data_as_text(world: World) -> None:
    refuses_every_halt(world.emulator, {"message": PAYLOAD})
    run = world.run()
    assert run.exit_code == 1
    assert_renders_as_text(run.summary)
    assert "Rejected." in run.summary  # the Store's words were shown, as text


def test_summary_of_a_defect_renders_data_as_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in halt-rollout whose message carries data: the summary still shows it as text.
    (In process: a defect cannot be caused from outside, which is the point of it.)"""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(HTML_PAYLOAD)

    summary_file, output_file = tmp_path / "summary.md", tmp_path / "output"
    summary_file.touch()
    output_file.touch()
    monkeypatch.setattr(main, "read_settings", broken)
    monkeypatch.setattr(Cancellation, "install", lambda self: None)
    monkeypatch.setattr(sys, "argv", ["entrypoint.py"])
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output_file))

    assert main.main() == 1
    summary = summary_file.read_text(encoding="utf-8")
    assert "halt-rollout crashed" in summary
    assert "evil.example" in summary
    assert_renders_as_text(summary)
    assert parse_file_command(output_file.read_text(encoding="utf-8"))["result"] == "failed"
    assert "::error title=halt-rollout crashed::" in capsys.readouterr().out


# Invisible characters are shown, not obeyed ------------------------------------------------

INVISIBLE = {
    "right-to-left override": "\u202e",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "left-to-right isolate": "\u2066",
    "byte order mark": "\ufeff",
    "escape": "\x1b",
    "line separator": "\u2028",
    "tag character": "\U000e0041",
}


def code_texts(summary: str) -> list[str]:
    """The text of every code span and code block, as GitHub's renderer shows it."""
    html = cmarkgfm.github_flavored_markdown_to_html(summary, options=Options.CMARK_OPT_UNSAFE)
    found = re.findall(r"<code[^>]*>(.*?)</code>", html, flags=re.S)
    return [unescape(text) for text in found]


def test_data_shown_as_code_is_shown_as_written(world: World) -> None:
    """Inside code nothing is live, so nothing is inserted: a link in the reason or in the
    Store's message is copied from the incident record as it was written. Only invisible
    characters are changed, into their visible names."""
    reason = "status page https://status.contoso.com/incidents/42 <b>www.contoso.com</b>"
    message = "Not haltable, see https://aka.ms/store-rollout [docs](https://learn.example)"
    refuses_every_halt(world.emulator, {"message": message})
    run = world.run({"reason": f"{reason}\u202e"})
    assert run.exit_code == 1
    shown = code_texts(run.summary)
    assert f"{reason}[U+202E]" in shown, shown
    assert any(message in text for text in shown), shown
    assert "\u200b" not in run.summary
    assert_renders_as_text(run.summary)


@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_invisible_characters_in_data_are_shown_visibly(world: World, char: str) -> None:
    code = f"U+{ord(char):04X}"
    refuses_every_halt(
        world.emulator, {"code": "InvalidState", "message": f"Refused{char}by the Store"}
    )
    # A control character in a name is refused as input; any other is the name's own.
    named = unicodedata.category(char) != "Cc"
    name = f"Contoso{char}exe.txt" if named else "Contoso"
    targets = f"targets:\n  - name: {json.dumps(name, ensure_ascii=False)}\n    app-id: {APP_ID}\n"
    run = world.run({"app-id": None, "targets": "targets.yml"}, files={"targets.yml": targets})
    assert run.exit_code == 1
    # A line or paragraph separator is whitespace: a message is folded onto one line.
    message = "Refused by the Store" if char.isspace() else f"Refused[{code}]by the Store"
    for where, text in (("log", run.stdout), ("summary", run.summary)):
        assert char not in text, where
        assert message in text, where
        if named:
            assert f"Contoso[{code}]exe.txt" in text, where
    # The outputs carry the same data, escaped in JSON: readable back exactly.
    [record] = json.loads(run.outputs["results"])
    assert record["name"] == name
    assert char not in run.outputs["results"]


@pytest.mark.parametrize("where", ["name", "Store message"])
def test_lone_surrogates_are_no_crash(world: World, where: str) -> None:
    """JSON and YAML escapes can spell halves of a character that UTF-8 cannot write."""
    refuses_every_halt(
        world.emulator, b'{"code": "InvalidState", "message": "Refused \\ud800 by the Store"}'
    )
    name = '"Contoso \\udc41"' if where == "name" else "Contoso"
    targets = f"targets:\n  - name: {name}\n    app-id: {APP_ID}\n"
    run = world.run({"app-id": None, "targets": "targets.yml"}, files={"targets.yml": targets})
    assert "Traceback" not in run.stdout + run.stderr
    assert run.exit_code == 1
    if where == "name":
        assert "::error title=Invalid input::" in run.stdout
    else:
        assert "Refused [U+D800] by the Store" in run.stdout
        assert json.loads(run.outputs["results"])[0]["result"] == "failed"


def test_every_invisible_character_unicode_knows_is_covered() -> None:
    """The list in halt_rollout.redact against this Python's Unicode database."""
    missed = [
        f"U+{point:04X}"
        for point in range(0x110000)
        if unicodedata.category(chr(point)) in ("Cc", "Cf", "Zl", "Zp")
        and chr(point) not in "\t\n\r"
        and visible_form(chr(point)) == chr(point)
    ]
    assert missed == []


HOSTILE = "\n::error::pwned\n![x](https://evil.example/x.png) <img src=x> \u202eexe.txt \u200b"


def test_hostile_entra_message_on_a_sign_in_failure_stays_data(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(
        Fault(
            method="POST",
            path=r"/token$",
            status=400,
            body={"error": "invalid_client", "error_description": "AADSTS7000215: " + HOSTILE},
            times=None,
        )
    )
    run = action()
    assert run.outputs["result"] == "failed"
    assert injected_commands(run.stdout) == []
    assert live_markdown(run.summary) == []
    for text in (run.stdout, run.summary, run.outputs["results"]):
        assert "\u202e" not in text
    # The data's own zero-width space is shown visibly (the summary's defusing ones are ours).
    assert "[U+200B]" in run.summary
    assert "[U+200B]" in run.stdout


def test_hostile_refused_input_stays_data(action: RunAction) -> None:
    run = action(
        {"app-id": "", "targets": "t.yml"},
        files={
            "t.yml": "targets:\n  - name: "
            + json.dumps(HOSTILE)
            + "\n    app-id: '[x](https://evil.example)'\n"
        },
    )
    assert run.exit_code == 1
    assert injected_commands(run.stdout) == []
    assert live_markdown(run.summary) == []
    assert "\u202e" not in run.stdout + run.summary
