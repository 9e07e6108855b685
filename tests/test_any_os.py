"""The action runs outside a container, on any OS (the contract's "Running it outside a
container"): the package as PyPI gets it, and the check CI runs on Windows and macOS."""

from __future__ import annotations

import fcntl
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

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
    # setuptools builds in the checkout (build/, *.egg-info): one xdist worker at a time.
    shared = tmp_path_factory.getbasetemp().parent
    with (shared / "build-dists.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
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


# -- the long description PyPI shows ---------------------------------------------------------


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = load(REPO / "scripts" / "check-dists.py", "check_dists")
SETUP = load(REPO / "setup.py", "halt_rollout_setup")
TAGGED = f"https://github.com/halt-rollout/halt-rollout/blob/v{VERSION}"
LINKS = """\
# Title

See [the contract](docs/contract.md), [above](#title), ![a logo](./img/logo.png)
and <img src="img/badge.svg" alt="badge">, [a reference][ref], [PyPI](https://pypi.org/)
and <mailto:someone@example.com>.

[ref]: .github/workflows/ci.yml

```markdown
[in a code block](stays/as/is.md)
```
"""


def test_the_wheel_links_absolutely_into_the_release_tag(dists: Path) -> None:
    wheel = dists / f"halt_rollout-{VERSION}-py3-none-any.whl"
    description = CHECK.long_description(wheel)
    assert CHECK.relative_links(description) == []
    assert f"]({TAGGED}/docs/contract.md)" in description
    assert f"]({TAGGED}/README.md#versions-and-pinning)" in description
    # The README itself is unchanged: on GitHub its relative links work.
    assert "](docs/contract.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_check_finds_every_link_pypi_would_break() -> None:
    # Anchors too: PyPI's renderer gives headings no id, so #title leads nowhere there.
    assert CHECK.relative_links(LINKS) == [
        "docs/contract.md",
        "#title",
        "./img/logo.png",
        "img/badge.svg",
        ".github/workflows/ci.yml",
    ]


def test_setup_makes_every_link_absolute_and_leaves_code_alone() -> None:
    described = SETUP.long_description(LINKS, TAGGED)
    assert CHECK.relative_links(described) == []
    assert f"[the contract]({TAGGED}/docs/contract.md)" in described
    assert f"[above]({TAGGED}/README.md#title)" in described
    assert f"![a logo]({TAGGED}/img/logo.png)" in described
    assert f'<img src="{TAGGED}/img/badge.svg"' in described
    assert f"[ref]: {TAGGED}/.github/workflows/ci.yml" in described
    assert "[PyPI](https://pypi.org/)" in described
    assert "[in a code block](stays/as/is.md)" in described
