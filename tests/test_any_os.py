"""The any-OS path: the package as PyPI gets it, and the check CI runs on Windows and macOS."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import halt_rollout

REPO = Path(__file__).resolve().parent.parent
VERSION = halt_rollout.__version__


def script(name: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = script("build-dists.py", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_the_wheel_has_the_project_page_and_the_command(dists: Path) -> None:
    wheel = dists / f"halt_rollout-{VERSION}-py3-none-any.whl"
    assert (dists / f"halt_rollout-{VERSION}.tar.gz").is_file()
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"halt_rollout-{VERSION}.dist-info/METADATA").decode()
        entry_points = archive.read(f"halt_rollout-{VERSION}.dist-info/entry_points.txt").decode()
        names = archive.namelist()
    headers, _, description = metadata.partition("\n\n")
    assert "Name: halt-rollout" in headers
    assert f"Version: {VERSION}" in headers
    assert "Project-URL: Source, https://github.com/halt-rollout/halt-rollout" in headers
    assert "Classifier: Operating System :: OS Independent" in headers
    assert "License-Expression: MIT" in headers
    assert "Description-Content-Type: text/markdown" in headers
    assert description.startswith("# halt-rollout")
    assert "halt-rollout = halt_rollout.cli:console" in entry_points
    # What runs, and nothing of the tests or the emulator.
    assert not [n for n in names if n.startswith(("tests/", "store_emulator/", "scripts/"))]


def test_the_wheel_passes_the_any_os_check(dists: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(dists / f"halt_rollout-{VERSION}-py3-none-any.whl") as archive:
        archive.extractall(unpacked)
    # The console script's target, imported from the wheel rather than from this checkout.
    launcher = (
        f"import sys; sys.path.insert(0, {str(unpacked)!r}); import halt_rollout.cli as c; "
        f"assert c.__file__.startswith({str(unpacked)!r}), c.__file__; sys.exit(c.main())"
    )
    done = script("any-os-check.py", "--", sys.executable, "-c", launcher, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("ok: dry-run", "ok: halted", "ok: already-halted", "any-os-check: passed"):
        assert line in done.stdout


def test_the_check_fails_when_the_command_does(tmp_path: Path) -> None:
    done = script("any-os-check.py", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert done.returncode == 1
    assert "the command would not start" in done.stderr


def test_a_lock_subset_keeps_each_entry_whole() -> None:
    done = script("lock-subset.py", "requirements-dev.txt", "trustme", "PyYAML")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        line
        for line in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith(("pyyaml==", "trustme=="))
    ]
    assert sum("--hash=sha256:" in line for line in lines) > 2
    assert not [line for line in lines if line.lstrip().startswith("#")]


def test_a_name_missing_from_the_lock_is_an_error() -> None:
    done = script("lock-subset.py", "requirements-dev.txt", "trustme", "no-such-package")
    assert done.returncode != 0
    assert "no-such-package" in done.stderr
