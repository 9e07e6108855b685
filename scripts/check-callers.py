"""Check that every caller of this repository's reusable workflows grants what they ask for.

    scripts/check-callers.py [README.md] [.github/workflows/*.yml]

A called workflow's job has at most the GITHUB_TOKEN permissions its caller's job grants:
GitHub refuses the run before any job starts when a called job asks for more (docs:
"Reusing workflows", access and permissions: the permissions passed from the caller can
only be downgraded by the called workflow). The callers checked: every job with a `uses:`
of one of .github/workflows/*.yml, in the README's YAML examples, in the comment block at
the head of each workflow file (its usage example), and in the workflows themselves.
Prints each caller found and exits 1 when one grants less than the called jobs ask for.
"""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
LEVELS = {"none": 0, "read": 1, "write": 2}
# Every permission GitHub knows; `read-all` and `write-all` grant each of them.
SCOPES = (
    "actions", "artifact-metadata", "attestations", "checks", "contents", "deployments",
    "discussions", "id-token", "issues", "models", "packages", "pages", "pull-requests",
    "repository-projects", "security-events", "statuses",
)  # fmt: skip
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*ya?ml\b")
CALLED = re.compile(r"(?:^|/)\.github/workflows/(?P<file>[^/@]+\.ya?ml)(?:@|$)")


@dataclass(frozen=True)
class Example:
    where: str  # file and line, for the report
    text: str


def permissions(value: Any) -> dict[str, int] | None:
    """A `permissions:` value as scope -> level; None when it is not given at all."""
    if value is None:
        return None
    if value in ("read-all", "write-all"):
        level = LEVELS[str(value).removesuffix("-all")]
        return dict.fromkeys(SCOPES, level)
    if not isinstance(value, dict):
        raise ValueError(f"permissions must be a mapping, read-all or write-all: {value!r}")
    return {str(k): LEVELS[str(v)] for k, v in value.items()}


def asked_by(called: dict[str, Any]) -> dict[str, int]:
    """What the called workflow's jobs ask for, together (each job's own, or the workflow's)."""
    top = permissions(called.get("permissions"))
    asked: dict[str, int] = {}
    for job in (called.get("jobs") or {}).values():
        own = permissions(job.get("permissions"))
        for scope, level in (own if own is not None else top or {}).items():
            asked[scope] = max(asked.get(scope, 0), level)
    return {scope: level for scope, level in asked.items() if level}


def missing(granted: dict[str, int], asked: dict[str, int]) -> list[str]:
    name = {v: k for k, v in LEVELS.items()}
    return [
        f"{scope}: {name[level]}"
        for scope, level in sorted(asked.items())
        if granted.get(scope, 0) < level
    ]


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def readme_examples(path: Path) -> list[Example]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        indent, marker, start = match.group(1), match.group(2), i
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(marker):
            body.append(lines[i].removeprefix(indent))
            i += 1
        i += 1
        found.append(Example(f"{path.name}:{start}", "\n".join(body)))
    return found


def header_example(path: Path) -> list[Example]:
    """The paragraphs of the comment block at the head of a workflow file, uncommented."""
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        body.append(line[2:] if line.startswith("# ") else line[1:])
    paragraphs = "\n".join(body).split("\n\n")
    return [Example(f"{shown(path)} (header)", textwrap.dedent(p)) for p in paragraphs]


def callers(example: Example) -> list[tuple[str, dict[str, Any], dict[str, int] | None]]:
    """(job id, job, workflow-level permissions) for each job that calls one of ours."""
    try:
        data = yaml.safe_load(example.text)
    except yaml.YAMLError:
        return []  # prose in a comment block, or a YAML fragment of another kind
    if not isinstance(data, dict):
        return []
    jobs = data.get("jobs", data if "uses" not in data else {"(job)": data})
    top = permissions(data.get("permissions"))
    found = []
    for job_id, job in (jobs or {}).items():
        if isinstance(job, dict) and CALLED.search(str(job.get("uses", ""))):
            found.append((str(job_id), job, top))
    return found


def check(examples: list[Example]) -> list[str]:
    problems: list[str] = []
    for example in examples:
        found = callers(example)
        written = len(re.findall(r"^\s*uses:.*\.github/workflows/", example.text, re.MULTILINE))
        if written != len(found):
            problems.append(
                f"{example.where}: {written} `uses:` of a workflow, but {len(found)} jobs read "
                "from it: write the example as whole YAML (a workflow, or `jobs:`)"
            )
        for job_id, job, top in found:
            file = CALLED.search(str(job["uses"]))["file"]  # type: ignore[index]
            target = WORKFLOWS / file
            if not target.is_file():
                continue  # another repository's workflow
            asked = asked_by(yaml.safe_load(target.read_text(encoding="utf-8")))
            own = permissions(job.get("permissions"))
            granted = own if own is not None else top
            where = f"{example.where}: job {job_id} calls {file}"
            if granted is None:
                problems.append(f"{where} and grants no permissions (it asks for {asked})")
                continue
            short = missing(granted, asked)
            if short:
                problems.append(f"{where} without granting {', '.join(short)}")
            else:
                print(f"check-callers: ok: {where}")
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [REPO / "README.md", *sorted(WORKFLOWS.glob("*.yml"))]
    examples: list[Example] = []
    for given in paths:
        path = given.resolve()
        if path.suffix == ".md":
            examples += readme_examples(path)
        else:
            examples += header_example(path)
            examples.append(Example(shown(path), path.read_text("utf-8")))
    problems = check(examples)
    for problem in problems:
        print(f"check-callers: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
