"""The workflows and the README's examples follow the rules of GitHub's runner, its
concurrency rules included, and keep data out of scripts (rule 8); the release workflow has
the shape it needs.

`uses_reference` follows actions/runner's parser of a step's `uses:` (src/Sdk/DTPipelines/
Pipelines/ObjectTemplating/PipelineTemplateConverter.cs, ConvertToStep, and
PipelineConstants.TryParseSelfRepository): a plain string, never an expression; `docker://`
an image; `./` the workspace; `$/` the workflow's own repository, but only with a path
after it (a bare `$/` is refused); anything else `{org}/{repo}[/path]@ref`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from halt_rollout.halt import Failure, Result, TargetResult
from halt_rollout.inputs import Target
from halt_rollout.step_outputs import outputs
from store_emulator import Emulator, Fault
from store_emulator.actions_runner import run_action
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, base_inputs
from .test_data_stays_data import assert_renders_as_text
from .world import ROLLOUT

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SHA = re.compile(r"[0-9a-f]{40}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def uses_reference(uses: str) -> tuple[str, str]:
    """(kind, detail) as the runner sees a step's `uses:`; ValueError where it refuses it."""
    if "${{" in uses:
        raise ValueError("uses takes no expressions")
    if uses.startswith("docker://"):
        return "image", uses.removeprefix("docker://")
    if uses.startswith(("./", ".\\")):
        return "workspace", uses
    if uses.startswith("$/"):
        path = uses.removeprefix("$/").lstrip("/")
        if path:
            return "self-repository", path
        # Not a self-repository reference: it falls through to the org/repo parser below.
    name, at, ref = uses.partition("@")
    segments = [s for s in re.split(r"[/\\]", name) if s]
    if not at or "@" in ref or len(segments) < 2 or not ref:
        raise ValueError(f"Expected format {{org}}/{{repo}}[/path]@ref. Actual '{uses}'")
    return "repository", f"{segments[0]}/{segments[1]}@{ref}"


def workflow(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def steps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_id, step)
        for job_id, job in workflow(path)["jobs"].items()
        for step in job.get("steps", [])
    ]


@pytest.mark.parametrize(
    ("uses", "kind"),
    [
        ("$/.", "self-repository"),
        ("$/.github/actions/x", "self-repository"),
        ("$//x", "self-repository"),
        ("./", "workspace"),
        ("docker://ghcr.io/a/b@sha256:" + "0" * 64, "image"),
        ("actions/checkout@v7", "repository"),
    ],
)
def test_references_the_runner_takes(uses: str, kind: str) -> None:
    assert uses_reference(uses)[0] == kind


@pytest.mark.parametrize("uses", ["$/", "$//", "actions/checkout", "a@b", "${{ env.X }}"])
def test_references_the_runner_refuses(uses: str) -> None:
    with pytest.raises(ValueError, match=r"expressions|Expected format"):
        uses_reference(uses)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_reference_is_one_the_runner_takes_and_is_pinned(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for job_id, step in steps(path):
        if "uses" not in step:
            continue
        kind, detail = uses_reference(step["uses"])
        where = f"{path.name} job {job_id}: {step['uses']}"
        if kind == "repository":
            ref = detail.rsplit("@", 1)[1]
            assert SHA.fullmatch(ref), f"{where}: pin a full commit SHA"
            [line] = [line for line in lines if f"uses: {step['uses']}" in line][:1]
            assert re.search(r"# v\d+(\.\d+)*", line), f"{where}: say which version the SHA is"
        elif kind == "image":
            assert DIGEST.search(detail), f"{where}: pin the image by digest"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_called_workflow_exists_at_this_commit_or_is_pinned(path: Path) -> None:
    for job_id, job in workflow(path)["jobs"].items():
        uses = job.get("uses")
        if uses is None:
            continue
        if uses.startswith("./"):
            assert (REPO / uses).is_file(), f"{path.name} job {job_id}: {uses} is missing"
        else:
            assert SHA.fullmatch(uses.rsplit("@", 1)[-1]), f"{path.name} job {job_id}: {uses}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_permission_is_granted_to_a_whole_workflow(path: Path) -> None:
    assert workflow(path)["permissions"] == {}
    for job_id, job in workflow(path)["jobs"].items():
        assert "permissions" in job, f"{path.name} job {job_id} sets no permissions"
        if "uses" not in job:
            assert "timeout-minutes" in job, f"{path.name} job {job_id} has no timeout"


def test_the_reusable_workflow_runs_this_repositorys_own_action() -> None:
    [halt] = [
        s
        for _, s in steps(REPO / ".github" / "workflows" / "halt-rollout.yml")
        if s.get("id") == "halt"
    ]
    kind, detail = uses_reference(halt["uses"])
    assert (kind, detail) == ("self-repository", ".")
    assert (REPO / detail / "action.yml").is_file()
    # It runs on GitHub's hosted runner, which has runner 2.336.0 and `$/`.
    job = workflow(REPO / ".github" / "workflows" / "halt-rollout.yml")["jobs"]["halt"]
    assert job["runs-on"].startswith("ubuntu-")


RELEASE = workflow(REPO / ".github" / "workflows" / "release.yml")


def test_only_the_attestation_and_pypi_jobs_can_ask_for_an_oidc_token() -> None:
    asking = {j for j, job in RELEASE["jobs"].items() if job["permissions"].get("id-token")}
    assert asking == {"attest", "pypi"}
    assert RELEASE["jobs"]["pypi"]["permissions"] == {"id-token": "write"}
    assert RELEASE["jobs"]["pypi"]["environment"]["name"] == "pypi"
    writers = {
        j for j, job in RELEASE["jobs"].items() if job["permissions"].get("contents") == "write"
    }
    assert writers == {"release"}


def test_the_release_publishes_to_pypi_only_after_the_tags() -> None:
    jobs = RELEASE["jobs"]
    assert "release" in jobs["pypi"]["needs"]
    assert {"image", "attest", "dists"} <= set(jobs["release"]["needs"])
    assert "ci" in jobs["image"]["needs"]
    assert "ci" in jobs["dists"]["needs"]
    [publish] = [s for s in jobs["pypi"]["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert uses_reference(publish["uses"])[1].startswith("pypa/gh-action-pypi-publish@")


def test_the_release_attests_the_image_by_its_digest() -> None:
    attest = RELEASE["jobs"]["attest"]["steps"]
    subjects = [
        s["with"]
        for s in attest
        if s.get("uses", "").startswith("actions/attest@") and "subject-digest" in s["with"]
    ]
    assert len(subjects) == 2  # provenance, then the SBOM
    for subject in subjects:
        assert subject["subject-digest"] == "${{ needs.image.outputs.digest }}"
        assert subject["push-to-registry"] is True
    assert "sbom-path" in subjects[1]


def test_the_release_commit_changes_only_action_yml() -> None:
    [write] = [
        s
        for s in RELEASE["jobs"]["release"]["steps"]
        if s.get("name") == "Write the release action.yml"
    ]
    assert "scripts/release-action-yml.py" in write["run"]
    assert "git diff --exit-code --stat -- . ':!action.yml'" in write["run"]


# The release: verified before it is published, re-runnable, verifiable by its users ---------

README = (REPO / "README.md").read_text(encoding="utf-8")
VERIFY = re.compile(r"gh attestation verify [^\n]*")


def run_text(job: str) -> str:
    return "\n".join(s.get("run", "") for s in RELEASE["jobs"][job]["steps"])


def test_nothing_is_published_before_the_image_and_dists_are_verified() -> None:
    jobs = RELEASE["jobs"]
    assert {"image", "attest", "dists"} <= set(jobs["verify"]["needs"])
    assert "verify" in jobs["release"]["needs"]
    assert "release" in jobs["pypi"]["needs"]
    assert {"release", "pypi"} <= set(jobs["published"]["needs"])
    # The image is pushed by digest only; its tags come after verify, in the release job.
    [build] = [s for s in jobs["image"]["steps"] if s.get("id") == "build"]
    assert "push-by-digest=true" in build["with"]["outputs"]
    assert "tags" not in build["with"]
    assert "pull" not in build["with"]  # the base is the Dockerfile's digest, never a tag
    assert "imagetools create" in run_text("release")


def test_verify_pulls_without_credentials_and_says_how_to_make_the_package_public() -> None:
    [pull] = [
        s
        for s in RELEASE["jobs"]["verify"]["steps"]
        if s.get("name") == "Pull the digest without credentials"
    ]
    assert 'DOCKER_CONFIG="$RUNNER_TEMP/anonymous-docker"' in pull["run"]
    assert 'docker pull "$IMAGE@$DIGEST"' in pull["run"]
    assert "Change visibility, Public" in pull["run"]
    verify_steps = RELEASE["jobs"]["verify"]["steps"]
    assert any(s.get("uses") == "./" and s["with"].get("dry-run") == "true" for s in verify_steps)
    assert not any("login-action" in s.get("uses", "") for s in verify_steps)


def test_a_re_run_completes_a_half_finished_release() -> None:
    plan = run_text("plan")
    assert "resume=" in plan
    assert 'fail "$tag exists already"' not in plan  # the old refusal of any existing tag
    release = run_text("release")
    assert 'git rev-parse -q --verify "refs/tags/$TAG"' in release
    assert 'gh release view "$TAG"' in release
    [publish] = [s for s in RELEASE["jobs"]["pypi"]["steps"] if "pypi-publish" in s.get("uses", "")]
    assert publish["with"]["skip-existing"] is True
    # The image job looks at the tag itself: "Re-run jobs" on it does not re-run plan, and a
    # rebuild after the tag was pushed would get a digest the release job refuses.
    image = RELEASE["jobs"]["image"]["steps"]
    [resume] = [s for s in image if s.get("id") == "resume"]
    assert 'git rev-parse -q --verify "refs/tags/$TAG"' in resume["run"]
    assert image[0]["with"]["fetch-depth"] == 0
    [build] = [s for s in image if s.get("id") == "build"]
    assert build["if"] == "steps.resume.outputs.digest == ''"


def test_a_re_run_job_can_upload_its_artifacts_again() -> None:
    # An artifact's name is unique within a run, across its attempts: a re-run job that
    # uploads under the same name gets 409 Conflict unless it overwrites (or names the
    # attempt). sbom-action's own upload cannot overwrite, so it is off.
    for path in WORKFLOWS:
        for job in (workflow(path).get("jobs") or {}).values():
            for step in job.get("steps", []):
                uses, given = step.get("uses", ""), step.get("with", {})
                if uses.startswith("actions/upload-artifact@"):
                    attempt = "github.run_attempt" in str(given.get("name"))
                    assert given.get("overwrite") is True or attempt, (path.name, given)
                if uses.startswith("anchore/sbom-action@"):
                    assert given.get("upload-artifact") is False, (path.name, given)


def test_every_verification_binds_the_repository_and_the_release_workflow() -> None:
    text = (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    commands = VERIFY.findall(text) + VERIFY.findall(README)
    assert len(commands) >= 6
    for command in commands:
        assert "--owner" not in command, command
        assert "--repo" in command, command
        assert "--signer-workflow" in command, command
        assert ".github/workflows/release.yml" in command, command
    # Both the image and the wheel, before publishing and after.
    for job in ("verify", "published"):
        ran = VERIFY.findall(run_text(job))
        assert any("oci://" in c for c in ran), job
        assert any(".whl" in c for c in ran), job
    assert any("oci://" in c for c in VERIFY.findall(README))
    assert any(".whl" in c for c in VERIFY.findall(README))


# Dependabot's docker updater (dependabot-core docker/lib/dependabot/docker/file_parser.rb,
# FROM_LINE; file_updater.rb, update_digest_and_tag): a FROM line it reads has a literal image
# name, and with `:tag@digest` it rewrites both. An ARG in FROM is no dependency at all.
NAME_COMPONENT = r"(?:[a-z\d]+(?:(?:[._]|__|[-]*)[a-z\d]+)*)"
FROM_LINE = re.compile(
    rf"^FROM\s+(?:--platform=\S+\s+)?(?:(?P<registry>[\w.-]+\.[\w.-]+(?::\d+)?)/)?"
    rf"(?P<image>{NAME_COMPONENT}(?:/{NAME_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
    rf"(?:@(?P<digest>[^\s]+))?",
    re.IGNORECASE,
)


def test_the_base_image_is_one_dependabot_keeps_fresh() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    froms = [line for line in dockerfile if line.upper().startswith("FROM")]
    assert len(froms) == 1
    match = FROM_LINE.match(froms[0])
    assert match, froms[0]
    assert match["image"] == "python"
    assert match["tag"]
    assert match["tag"].startswith("3.11-")
    assert match["digest"]
    assert DIGEST.fullmatch(match["digest"])
    assert not any(line.upper().startswith("ARG") for line in dockerfile)
    ci = workflow(REPO / ".github" / "workflows" / "ci.yml")["jobs"]["container"]
    assert ci["env"]["CONTAINER_TEST_BASE_IMAGE"] == "dockerfile"


def test_dependabot_reads_no_from_line_through_an_arg() -> None:
    assert FROM_LINE.match("FROM ${BASE_IMAGE}") is None
    assert FROM_LINE.match("FROM python:3.11-slim-bookworm@sha256:" + "0" * 64)


ROOT = Path(__file__).resolve().parent.parent


def _workflow_step(path: Path, name: str) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if step.get("name") == name:
                return dict(step)
    raise AssertionError(f"no step {name} in {path}")


def _readme_yaml_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"(?ms)^( *)```ya?ml\n(.*?)^\1```", text)]


def _run_scripts(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "run" and isinstance(value, str)) or (
                key == "script" and isinstance(value, str)
            ):
                found.append(value)
            else:
                found += _run_scripts(value)
    elif isinstance(node, list):
        for item in node:
            found += _run_scripts(item)
    return found


def test_no_example_puts_an_expression_inside_a_script() -> None:
    sources = [*_readme_yaml_blocks()]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / ".github/workflows").glob("*.yml")]
    scripts = []
    for source in sources:
        scripts += _run_scripts(yaml.safe_load(textwrap_dedent(source)))
    assert scripts
    assert [s for s in scripts if "${{" in s] == []


def textwrap_dedent(text: str) -> str:
    return textwrap.dedent(text)


def _bash_step(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _dry_run_with_status(emulator: Emulator, tmp_path: Path, status: str) -> ActionRun:
    emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            times=None,
            status=200,
            body={
                "isPackageRollout": True,
                "packageRolloutPercentage": 25,
                "packageRolloutStatus": status,
                "fallbackSubmissionId": "0",
            },
        )
    )
    return run_action(
        {**base_inputs(emulator), "dry-run": "true", "reason": "[r](https://evil.example)"},
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path},
        workdir=tmp_path / "run",
    )


def test_emergency_stop_writes_no_store_data_into_the_summary(
    emulator: Emulator, tmp_path: Path
) -> None:
    """It once wrote the `status` output (the Store's packageRolloutStatus, any printable
    text) between backticks into the job summary: a backtick in it made a live image and
    link. The action's own summary says it all; no step of the workflow adds to it."""
    hostile = "InProgress` ![p](https://evil.example/p.png) [x](https://evil.example) `"
    run = _dry_run_with_status(emulator, tmp_path, hostile)
    assert run.outputs["status"] == hostile
    assert_renders_as_text(run.summary)
    workflow = yaml.safe_load((ROOT / ".github/workflows/emergency-stop.yml").read_text())
    scripts = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert not any("GITHUB_STEP_SUMMARY" in script for script in scripts)


def test_emergency_stop_keeps_the_results_without_printing_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The artifact step `cat`s halt-results.json into the log. The action's own log keeps
    `##[` inert (redact.inert: the runner reads the older command syntax anywhere in a
    line); this step prints the reason and the Store's messages (in `results`) raw.
    Observed: a log line holding `##[error]forged` (a forged annotation)."""
    reason = "##[error]forged from the reason"
    step = _workflow_step(ROOT / ".github/workflows/emergency-stop.yml", "Keep the results")
    results = json.dumps([{"name": "a", "result": "failed", "error": "##[warning]forged Store"}])
    env = {
        "RESULTS": results,
        "RESULT": "failed",
        "REASON": reason,
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "1",
    }
    done = _bash_step(step["run"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "halt-results.json").read_text())
    assert record["reason"] == reason  # the JSON itself is built safely
    assert record["results"][0]["error"] == "##[warning]forged Store"
    assert [line for line in done.stdout.splitlines() if "##[" in line] == []


def _telling_the_team_script() -> str:
    for block in _readme_yaml_blocks():
        if "Write the chat message" in block:
            steps = yaml.safe_load(textwrap_dedent(block))
            for step in steps:
                if step.get("name") == "Write the chat message":
                    return str(step["run"])
    raise AssertionError("no 'Write the chat message' example in README.md")


HOSTILE_TEXT = "\"quoted\" $(touch pwned) `touch pwned2` \\ \n'single' {x} \u202e"


def test_telling_the_team_builds_valid_json_from_hostile_outputs(tmp_path: Path) -> None:
    results = json.dumps(
        [{"name": HOSTILE_TEXT, "result": "failed"}, {"name": None, "result": "halted"}]
    )
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "failed",
            "RESULTS": results,
            "REASON": HOSTILE_TEXT,
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    message = json.loads((tmp_path / "slack.json").read_text())
    assert HOSTILE_TEXT in message["text"]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_telling_the_team_takes_the_largest_results_the_action_makes(tmp_path: Path) -> None:
    """Linux refuses any one environment string over 128 KiB (MAX_ARG_STRLEN), and the
    README passes `results` to the chat step as one: the action keeps it under that. Built
    here by the action's own report from 1000 failed targets with long Store messages."""
    failure = Failure("Halt refused by the Store (HTTP 409)", "Halt refused: " + "m" * 1500)
    many = [
        TargetResult(Target(APP_ID, name=f"Contoso {n}"), Result.FAILED, f"{n}", None, failure)
        for n in range(1000)
    ]
    results = outputs(many)["results"]
    assert 100_000 < len(results.encode()) < 128 * 1024
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "failed",
            "RESULTS": results,
            "REASON": "r",
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


def test_telling_the_team_chat_message_carries_no_live_mentions_or_links(
    tmp_path: Path,
) -> None:
    """The chat message's text is Slack mrkdwn: `<!channel>` notifies everyone and
    `<https://x|label>` is a disguised link. The README builds the JSON safely, but the
    reason and the targets' names (a flight's friendlyName comes from the Store) go in as
    they are. Observed: `<!channel>` and `<https://evil.example|Partner Center>` in the
    payload's text."""
    reason = "<!channel> see <https://evil.example|Partner Center>"
    results = json.dumps([{"name": "<!here>", "result": "halted"}])
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "halted",
            "RESULTS": results,
            "REASON": reason,
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = json.loads((tmp_path / "slack.json").read_text())["text"]
    assert "<!" not in text
    assert "<https://evil.example" not in text


def test_callers_grant_what_the_called_workflow_asks() -> None:
    called = yaml.safe_load((ROOT / ".github/workflows/halt-rollout.yml").read_text())
    asked = called["jobs"]["halt"]["permissions"]
    for block in _readme_yaml_blocks():
        if "halt-rollout.yml@" not in block:
            continue
        workflow = yaml.safe_load(block)
        for job in workflow["jobs"].values():
            if "halt-rollout.yml@" in str(job.get("uses", "")):
                granted = job.get("permissions", workflow.get("permissions", {}))
                for scope, level in asked.items():
                    assert granted.get(scope) == level or granted.get(scope) == "write", scope


def test_emergency_stop_run_name_reason_is_an_expression_not_a_script() -> None:
    workflow = (ROOT / ".github/workflows/emergency-stop.yml").read_text()
    parsed = yaml.safe_load(workflow)
    assert "inputs.reason" in parsed["run-name"]
    # The reason reaches scripts only through env.
    for script in _run_scripts(parsed):
        assert "inputs." not in script


# Concurrency, read with GitHub's documented rules ------------------------------------------
#
# "Control the concurrency of workflows and jobs": at most one run (or job) is running and
# one pending in a concurrency group. A run queued while another of its group is in progress
# is pending, and "any existing pending job or workflow in the same concurrency group ...
# will be canceled and the new queued job or workflow will take its place"; with
# `cancel-in-progress: true` the running one is cancelled too. Group names are compared
# case-insensitively. The model below plays dispatches that all arrive while the first one
# still runs (the incident: several people pressing stop within seconds), and says which
# runs GitHub would cancel.

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(text: str, context: dict[str, str]) -> str:
    """A concurrency group with its `${{ }}` filled in from `context` (inputs.*, github.*);
    anything else is refused, so a group this model cannot read fails the test."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            raise ValueError(f"the model cannot evaluate ${{{{ {name} }}}}")
        return context[name]

    return EXPRESSION.sub(value, text)


def concurrency_of(node: dict[str, Any]) -> tuple[str, bool] | None:
    setting = node.get("concurrency")
    if setting is None:
        return None
    if isinstance(setting, str):
        return setting, False
    cancel = setting.get("cancel-in-progress", False)
    assert isinstance(cancel, bool), "the model reads only a literal cancel-in-progress"
    return str(setting["group"]), cancel


def cancelled_runs(flow: dict[str, Any], runs: list[dict[str, str]]) -> set[int]:
    """Which of `runs` (their contexts, in arrival order, all while the first still runs)
    GitHub cancels, at the workflow's level or any job's."""
    cancelled: set[int] = set()
    levels = [flow, *flow["jobs"].values()]
    for level in levels:
        setting = concurrency_of(level)
        if setting is None:
            continue
        template, cancel_in_progress = setting
        running: dict[str, int] = {}
        pending: dict[str, int] = {}
        for index, context in enumerate(runs):
            if index in cancelled:
                continue
            group = evaluate(template, context).lower()
            if group not in running:
                running[group] = index
                continue
            if cancel_in_progress:
                cancelled.add(running[group])
                running[group] = index
                continue
            if group in pending:
                cancelled.add(pending[group])
            pending[group] = index
    return cancelled


def dispatch(**inputs: str) -> dict[str, str]:
    context = {f"inputs.{name}": value for name, value in inputs.items()}
    context.update(
        {
            "github.workflow": "Emergency stop",
            "github.event_name": "workflow_dispatch",
            "github.ref": "refs/heads/main",
        }
    )
    return context


# Three people, three stops within seconds: the same app's own rollout, then one flight, then
# another; then a dry run and a halt of another app.
FLIGHT_B = "43e448df-97c9-4a43-a0bc-2a445e736bcd"
FLIGHT_C = "9d5cb0b2-7a4d-4a55-9d21-6a1f3ad6c0e1"
STOPS = [
    dispatch(**{"app-id": "9NBLGGH4R315", "flight-id": "", "dry-run": "false"}),
    dispatch(**{"app-id": "9NBLGGH4R315", "flight-id": FLIGHT_B, "dry-run": "false"}),
    dispatch(**{"app-id": "9NBLGGH4R315", "flight-id": FLIGHT_C, "dry-run": "false"}),
    dispatch(**{"app-id": "9WZDNCRFJ3PS", "flight-id": "", "dry-run": "true"}),
    dispatch(**{"app-id": "9WZDNCRFJ3PS", "flight-id": "", "dry-run": "false"}),
]


def test_the_concurrency_model_finds_a_queued_stop_cancelled() -> None:
    """The emergency stop's former group, one per app: flight B's stop waits behind the
    app's, and flight C's dispatch cancels it. Flight B would never be halted."""
    former = {
        "concurrency": {
            "group": "emergency-stop-${{ inputs.app-id }}",
            "cancel-in-progress": False,
        },
        "jobs": {"halt": {}},
    }
    assert cancelled_runs(former, STOPS) == {1}
    with pytest.raises(ValueError, match="cannot evaluate"):
        cancelled_runs({"concurrency": "x-${{ inputs.nope }}", "jobs": {}}, STOPS)


def test_no_dispatch_can_cancel_another_stop() -> None:
    flow = workflow(REPO / ".github" / "workflows" / "emergency-stop.yml")
    assert cancelled_runs(flow, STOPS) == set()
    # Nor the reusable workflow's job, whatever its callers dispatch.
    reusable = workflow(REPO / ".github" / "workflows" / "halt-rollout.yml")
    assert cancelled_runs(reusable, STOPS) == set()


def test_two_guards_never_run_at_once_and_a_running_one_is_never_cancelled() -> None:
    flow = workflow(REPO / ".github" / "workflows" / "guard.yml")
    hourly = {"github.workflow": "Store rollout guard", "github.event_name": "schedule"}
    by_hand = {**hourly, "github.event_name": "workflow_dispatch", "inputs.dry-run": "true"}
    runs = [hourly, by_hand, hourly, hourly]
    setting = concurrency_of(flow)
    assert setting is not None, "the guard needs a concurrency group"
    template, cancel_in_progress = setting
    # One group for every run, scheduled or by hand: never two at once.
    assert len({evaluate(template, run).lower() for run in runs}) == 1
    # The running guard (it may be halting) is never cancelled; waiting ones may be.
    assert not cancel_in_progress
    assert 0 not in cancelled_runs(flow, runs)
