"""Every example in the README works as copied (the README's promise; contract: inputs, outputs).

Read with GitHub's rules: a step's `with:` names only inputs of the action it runs (unknown
ones are ignored with a warning, so a typo would silently do nothing); a calling job passes
only inputs the called workflow declares and every required one; `gh workflow run -f` names
only inputs of the workflow's `workflow_dispatch` (GitHub refuses the run otherwise) and
every required one; `vars.*` are read where they are visible (an environment's variables
only in a job with that environment, never in a job-level `if:` or a calling job's `with:`);
a job that runs a script of the repository checks the repository out first. The README's
copies of the example workflows are those of .github/workflows/ with only the action
reference changed, and the README names every input, output and result of the Action and
every error title it can log. The set-up's commands make the environment, variables and
secret the copied workflows read, and every `gh` command names its repository.
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from halt_rollout.cli import parser
from halt_rollout.halt import NOT_DONE, Result

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
WORKFLOWS = REPO / ".github" / "workflows"
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
REUSABLE = yaml.safe_load((WORKFLOWS / "halt-rollout.yml").read_text(encoding="utf-8"))
OUR_ACTION = "halt-rollout/halt-rollout@"
RELEASED = "halt-rollout/halt-rollout@v1"
FENCE = re.compile(r"(?ms)^( *)(`{3,})(\w*)\n(.*?)^\1\2\s*$")
DISPATCH = re.compile(r"gh workflow run [^\n`]*")
VARS = re.compile(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)")
REPOSITORY_SCRIPT = re.compile(r"(?:^|[\s;&|(])\.?/?(?:scripts|\.github)/[\w./-]+|\./[\w.-]+\.sh")


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """`on:`, which YAML 1.1 (GitHub's reader too) may load as the key True."""
    found: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return found


def fenced(language: str) -> list[tuple[int, str]]:
    """(offset in the README, body) of every fenced block in `language`."""
    return [
        (m.start(), textwrap.dedent(m.group(4)))
        for m in FENCE.finditer(README)
        if m.group(3) == language
    ]


def yaml_examples() -> list[tuple[int, Any]]:
    return [(at, yaml.safe_load(body)) for at, body in fenced("yaml")]


def section(offset: int) -> str:
    """The README's text under the heading (any level) that holds `offset`."""
    starts = [m.start() for m in re.finditer(r"(?m)^#{1,6} ", README)]
    start = max((s for s in starts if s <= offset), default=0)
    end = min((s for s in starts if s > offset), default=len(README))
    return README[start:end]


def jobs_of(example: Any) -> dict[str, dict[str, Any]]:
    """The jobs of a whole workflow, or of a fragment that is a job; {} for others."""
    if isinstance(example, dict) and isinstance(example.get("jobs"), dict):
        return dict(example["jobs"])
    if isinstance(example, dict) and all(
        isinstance(job, dict) and ("steps" in job or "uses" in job) for job in example.values()
    ):
        return dict(example)
    return {}


def steps_of(example: Any) -> list[dict[str, Any]]:
    if isinstance(example, list):
        return [step for step in example if isinstance(step, dict)]
    return [step for job in jobs_of(example).values() for step in job.get("steps", [])]


def every_example() -> Iterator[tuple[str, Any]]:
    """(where, parsed) for the README's YAML examples and the workflows of this repository."""
    for at, example in yaml_examples():
        yield f"README.md line {README.count(chr(10), 0, at) + 1}", example
    for path in sorted(WORKFLOWS.glob("*.yml")):
        yield path.name, yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_named(name: str) -> tuple[int, dict[str, Any]]:
    [found] = [
        (at, e) for at, e in yaml_examples() if isinstance(e, dict) and e.get("name") == name
    ]
    return found


# Steps and callers ------------------------------------------------------------------------


def test_every_step_of_the_action_names_only_its_inputs() -> None:
    seen = 0
    for where, example in every_example():
        for step in steps_of(example):
            uses = str(step.get("uses", ""))
            if uses.startswith(OUR_ACTION) or uses in ("./", "$/."):
                seen += 1
                unknown = set(step.get("with") or {}) - set(ACTION["inputs"])
                assert not unknown, f"{where}: {uses} has no input {sorted(unknown)}"
    assert seen >= 8


def test_the_inputs_block_is_every_input_with_its_default() -> None:
    [(_, block)] = [(at, e) for at, e in yaml_examples() if "## Inputs" in section(at)[:20]]
    [step] = steps_of(block)
    given = step["with"]
    assert list(given) == list(ACTION["inputs"])
    for name, spec in ACTION["inputs"].items():
        value = given[name]
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert shown == str(spec.get("default", "")), name


def test_every_caller_of_the_reusable_workflow_passes_what_it_declares() -> None:
    declared = triggers(REUSABLE)["workflow_call"]
    seen = 0
    for where, example in every_example():
        for job_id, job in jobs_of(example).items():
            if "/.github/workflows/halt-rollout.yml@" not in str(job.get("uses", "")):
                continue
            seen += 1
            given = set(job.get("with") or {})
            assert given <= set(declared["inputs"]), (
                where,
                job_id,
                given - set(declared["inputs"]),
            )
            required = {n for n, spec in declared["inputs"].items() if spec.get("required")}
            assert required <= given, (where, job_id, required - given)
            secrets = job.get("secrets")
            assert secrets == "inherit" or set(secrets or {}) <= set(declared["secrets"]), where
    assert seen >= 1


def test_the_reusable_workflow_offers_and_passes_every_input_and_output() -> None:
    declared = triggers(REUSABLE)["workflow_call"]
    # The secret is a secret of the workflow; the environment is the called job's own.
    assert set(declared["inputs"]) == set(ACTION["inputs"]) - {"client-secret"} | {"environment"}
    [step] = [s for s in REUSABLE["jobs"]["halt"]["steps"] if s.get("id") == "halt"]
    assert set(step["with"]) == set(ACTION["inputs"])
    assert set(declared["outputs"]) == set(ACTION["outputs"])
    assert set(REUSABLE["jobs"]["halt"]["outputs"]) == set(ACTION["outputs"])


# What GitHub hands a run: dispatch inputs, variables, the workspace ---------------------


def dispatch_lines() -> list[tuple[str, str]]:
    lines = [("README.md", line) for line in DISPATCH.findall(README)]
    for path in sorted(WORKFLOWS.glob("*.yml")):
        lines += [(path.name, line) for line in DISPATCH.findall(path.read_text(encoding="utf-8"))]
    return lines


@pytest.mark.parametrize(("where", "line"), dispatch_lines())
def test_a_dispatch_line_gives_its_workflow_exactly_the_inputs_it_takes(
    where: str, line: str
) -> None:
    words = shlex.split(line.split("#", 1)[0].split("&&", 1)[0])
    name = words[3]
    fields = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-f")
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    inputs = triggers(workflow)["workflow_dispatch"].get("inputs") or {}
    assert set(fields) <= set(inputs), (where, line, set(fields) - set(inputs))
    required = {n for n, spec in inputs.items() if spec.get("required")}
    assert required <= set(fields), (where, line, required - set(fields))
    for key, value in fields.items():
        if inputs[key].get("type") == "boolean":
            assert value in ("true", "false"), (where, key, value)


def test_the_readme_shows_the_dispatch_lines_it_promises() -> None:
    workflows = {shlex.split(line)[3] for where, line in dispatch_lines() if where == "README.md"}
    assert workflows == {"emergency-stop.yml", "guard.yml"}


# The set-up's commands against what the copied workflows read ---------------------------

GH_REPOSITORY_COMMANDS = re.compile(
    r"\bgh (?:workflow run|run watch|variable set|secret set|api)\b[^\n`]*"
)


def copied_workflows() -> list[dict[str, Any]]:
    """The two workflows the README has a reader copy: the stop and the guard."""
    return [workflow_named(name)[1] for name in ("Emergency stop", "Store rollout guard")]


def test_the_set_up_commands_make_what_the_copied_workflows_read() -> None:
    """Step 4's environment, variables and secret are the ones the copied workflows name,
    and the federated credential's subject names that same environment: a mismatch would
    fail the rehearsal with an empty variable or AADSTS700213."""
    environments = {job["environment"] for w in copied_workflows() for job in jobs_of(w).values()}
    assert environments == {"store-production"}
    named = set(re.findall(r"environments/([\w-]+)", README))
    named |= set(re.findall(r"--env ([\w-]+)", README))
    named |= set(re.findall(r":environment:([\w-]+)", README))
    assert named == environments
    read = {v for w in copied_workflows() for v in VARS.findall(yaml.safe_dump(w))}
    assert read <= set(re.findall(r"gh variable set (\w+)", README)), read
    secrets = {
        s
        for w in copied_workflows()
        for step in steps_of(w)
        if str(step.get("uses", "")).startswith(OUR_ACTION)
        for s in re.findall(r"secrets\.(\w+)", str(step.get("with", "")))
    }
    assert secrets == {"STORE_CLIENT_SECRET"}
    assert secrets <= set(re.findall(r"gh secret set (\w+)", README))


def test_every_gh_command_names_the_repository_it_works_on() -> None:
    """A release engineer runs the set-up from wherever the terminal is: a `gh` command that
    relied on the current directory being a clone would fail there, or act on another."""
    shown = [body for _, body in fenced("sh")] + re.findall(r"(?<!`)`([^`\n]+)`(?!`)", README)
    commands = [c for text in shown for c in GH_REPOSITORY_COMMANDS.findall(text)]
    assert len(commands) >= 8, commands
    for command in commands:
        assert "--repo OWNER/REPO" in command or "repos/OWNER/REPO" in command, command


def test_variables_are_read_where_they_are_visible() -> None:
    """An environment's variables reach only the steps of a job with that environment: not
    a job-level `if:` (decided before the environment) and not a calling job's `with:`
    (a calling job has no environment). There, the README must say they are repository
    (or organization) variables, in the section of the example."""
    for at, example in yaml_examples():
        text = section(at)
        for job_id, job in jobs_of(example).items():
            outside = [str(job.get("if", ""))]
            if "uses" in job:
                outside.append(str(job.get("with", "")))
            for name in VARS.findall(" ".join(outside)):
                assert "repository" in text, (at, job_id, name)
                assert name in text, (at, job_id, name)
            inside = str(job.get("steps", "")) + str(job.get("env", ""))
            for name in VARS.findall(inside):
                assert "environment" in job or "repository or organization variables" in text, (
                    at,
                    job_id,
                    name,
                )


def test_jobs_that_run_a_script_of_the_repository_check_it_out_first() -> None:
    seen = 0
    for where, example in every_example():
        for job_id, job in jobs_of(example).items():
            checked_out = False
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    checked_out = True
                if REPOSITORY_SCRIPT.search(str(step.get("run", ""))):
                    seen += 1
                    assert checked_out, (
                        f"{where} job {job_id}: {step.get('run')!r} before a checkout"
                    )
    assert seen >= 2


# The README's copies of the example workflows ---------------------------------------------


def as_copied(path: Path) -> dict[str, Any]:
    """The example workflow as its first lines tell a user to copy it: the released action
    instead of `uses: ./`, without the checkout of the action and its `contents: read`."""
    workflow: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        job["steps"] = [s for s in job["steps"] if s.get("name") != "Check out the action"]
        for step in job["steps"]:
            if step.get("uses") == "./":
                step["uses"] = RELEASED
        job["permissions"].pop("contents", None)
    return workflow


@pytest.mark.parametrize(
    ("name", "file"),
    [("Emergency stop", "emergency-stop.yml"), ("Store rollout guard", "guard.yml")],
)
def test_the_readme_copy_is_the_example_workflow(name: str, file: str) -> None:
    _, copy = workflow_named(name)
    assert copy == as_copied(WORKFLOWS / file)
    head = (WORKFLOWS / file).read_text(encoding="utf-8").split("\nname:", 1)[0]
    # Its first lines say what to change when copying it, and the README links to it.
    assert "To copy it" in head, head
    assert "uses: ./" in head, head
    assert f"](.github/workflows/{file})" in README


# Names: inputs, outputs, results, flags ---------------------------------------------------


def table_names(heading: str) -> list[str]:
    text = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"(?m)^\| `([a-z-]+)` \|", text)


def test_the_readme_names_every_input_and_output() -> None:
    assert table_names("Inputs") == list(ACTION["inputs"])
    assert table_names("Outputs") == list(ACTION["outputs"])


def test_every_result_is_named_where_results_are_described() -> None:
    outputs = README.split("\n## Outputs\n", 1)[1].split("\n## ", 1)[0]
    for result in Result:
        assert f"`{result.value}`" in outputs, result
        if result is not Result.NOTHING_TO_HALT:  # a value of `results` records only
            assert result.value in ACTION["outputs"]["result"]["description"], result
            assert (
                result.value
                in triggers(REUSABLE)["workflow_call"]["outputs"]["result"]["description"]
            ), result


def test_every_flag_the_readme_names_is_one_the_command_line_takes() -> None:
    [(at, _)] = [(m.start(), m) for m in re.finditer(r"(?m)^### The command line$", README)]
    text = section(at)
    prose = FENCE.sub("", text)  # the flags of pipx, docker and the like are in code blocks
    named = set(re.findall(r"`(--[a-z][a-z-]*)", prose))
    known = {o for action in parser()._actions for o in action.option_strings}
    assert named, text[:200]
    assert named <= known, named - known
    assert {o for o in known if o.startswith("--")} - {"--help", "--version"} <= named


# Links ------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = ["README.md", "CONTRIBUTING.md", "docs/development.md", "docs/releasing.md"]


def anchors(markdown: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces as -."""
    found = set()
    for heading in re.findall(r"(?m)^#{1,6} (.+)$", FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: str) -> None:
    text = (REPO / page).read_text(encoding="utf-8")
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (REPO / page).parent / path if path else REPO / page
        assert linked.exists(), f"{page}: {target}"
        if anchor:
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{page}: {target}"


def test_the_anchor_rule_is_githubs() -> None:
    assert anchors(
        "## Not set up yet? Halt now in Partner Center\n### The whole app at once: `all-flights`\n"
    ) == {
        "not-set-up-yet-halt-now-in-partner-center",
        "the-whole-app-at-once-all-flights",
    }


# Failures ---------------------------------------------------------------------------------

# The base classes' titles, which every raise in the code replaces with its own.
CLASS_DEFAULT_TITLES = {"halt-rollout failed", "Store API call failed"}


def error_titles() -> set[str]:
    """Every title of an `::error`/`::warning` line the code can write: a `title=` argument,
    a class's or module's `…title = "…"`, and the first argument of `failure(…)`, `Failure(…)`,
    `runner.error(…)` and `runner.warning(…)`. An f-string counts by its fixed start."""
    titles: set[str] = set()
    for path in sorted((REPO / "halt_rollout").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                values += [k.value for k in node.keywords if k.arg == "title"]
                called = node.func
                name = called.attr if isinstance(called, ast.Attribute) else ""
                name = called.id if isinstance(called, ast.Name) else name
                if name in ("failure", "Failure", "error", "warning") and node.args:
                    values.append(node.args[0])
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n.lower().endswith("title") for n in names):
                    values.append(node.value)
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    titles.add(value.value)
                elif isinstance(value, ast.JoinedStr):
                    first = value.values[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        titles.add(first.value)
    return titles - CLASS_DEFAULT_TITLES


def test_every_error_title_is_in_the_when_it_fails_table() -> None:
    """A responder looks up the title the log shows; each has its row (what it means, what
    to do) in "When it fails"."""
    table = README[README.index("## When it fails") :]
    table = table[: table.index("\n## ")]
    shown = set(re.findall(r"\*\*([^*]+)\*\*", table))
    titles = error_titles()
    assert {"Invalid input", "Store answered HTTP ", "Halt outcome unknown"} <= titles
    missing = {t for t in titles if not any(s.startswith(t) for s in shown)}
    assert not missing, missing


def test_the_exit_code_names_every_result_that_passes() -> None:
    """The exit code's sentence names exactly the results that end a run with 0, and the
    ones that end it with 1 (`nothing-to-halt` of `all-flights` included)."""
    sentence = re.search(r"The exit code is\s+0 when every target ended (.*?)\.\n", README, re.S)
    assert sentence is not None
    passing, failing = sentence.group(1).split(", and 1 otherwise")
    assert set(re.findall(r"`([a-z-]+)`", passing)) == {
        r.value for r in Result if r not in NOT_DONE
    }
    assert set(re.findall(r"`([a-z-]+)`", failing)) == {r.value for r in NOT_DONE}
