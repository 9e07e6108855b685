"""The workflows against the rules of GitHub's runner, and the release workflow's shape.

`uses_reference` follows actions/runner's parser of a step's `uses:` (src/Sdk/DTPipelines/
Pipelines/ObjectTemplating/PipelineTemplateConverter.cs, ConvertToStep, and
PipelineConstants.TryParseSelfRepository): a plain string, never an expression; `docker://`
an image; `./` the workspace; `$/` the workflow's own repository, but only with a path
after it (a bare `$/` is refused); anything else `{org}/{repo}[/path]@ref`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    subjects = [s["with"] for s in attest if s.get("uses", "").startswith("actions/attest@")]
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
