"""Check the dists PyPI will serve: the sdist is whole, the long description has no relative link.

    scripts/check-dists.py [--all-tests] DIR

DIR holds the sdist and the wheel of this version (scripts/build-dists.py DIR). Checked:

1. The wheel's long description (METADATA), rendered as PyPI renders it (cmarkgfm, GitHub
   flavoured), links and shows images by absolute URLs only. A relative link leads nowhere
   on PyPI, and so does an #anchor: PyPI's rendering gives headings no id (setup.py makes
   them all absolute, into the repository at the release tag).
2. The sdist holds every file `git ls-files` names but LEFT_OUT (when run in a git clone).
3. Unpacked in a temporary directory, the sdist builds again with its own
   scripts/build-dists.py, and the wheel it gives is the same, file for file.
4. The tests run from the unpacked sdist, importing its code, not this checkout's:
   TESTS (every test file that reads the repository beyond the package, and the action run
   end to end), or the whole suite with --all-tests.

Exit 1 with what is wrong; the setuptools of the running Python builds (as build-dists.py).
"""

from __future__ import annotations

import argparse
import email
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options

REPO = Path(__file__).resolve().parent.parent
# Files of the repository that are about a git clone, not the project (MANIFEST.in says so too).
LEFT_OUT = frozenset({".ci/run", ".gitignore"})
# What a build adds to an sdist.
GENERATED = re.compile(r"^(PKG-INFO|setup\.cfg|[^/]+\.egg-info/.*)$")
TESTS = (
    "tests/test_contract.py",  # action.yml, README.md, docs/contract.md
    "tests/test_workflows.py",  # .github/workflows/, the Dockerfile, README.md
    "tests/test_readme_snippets.py",  # README.md against action.yml and the workflows
    "tests/test_actions_runner.py",  # the Dockerfile, the runner emulation
    "tests/test_release.py",  # scripts/release-action-yml.py, oci-layout-figures.py
    "tests/test_any_os.py",  # builds the dists again, the any-OS check, the locks
    "tests/test_cli.py",  # the command line
    "tests/test_action.py",  # the action end to end against the Store emulator
)
ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:


class _Targets(HTMLParser):
    """The targets of links and images in HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src", "source": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.found.append(value)


def relative_links(markdown: str) -> list[str]:
    """The link and image targets of `markdown` that are not absolute URLs, as rendered by
    cmarkgfm, PyPI's Markdown renderer (raw HTML kept, as PyPI keeps it before sanitizing)."""
    html = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    parser = _Targets()
    parser.feed(html)
    return [target for target in parser.found if not ABSOLUTE.match(target)]


def long_description(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
    payload = metadata.get_payload()
    return payload if isinstance(payload, str) else ""


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def tracked_files() -> set[str] | None:
    done = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False
    )
    if done.returncode != 0:
        return None
    return {name for name in done.stdout.decode().split("\0") if name}


def say(line: str) -> None:
    print(f"check-dists: {line}", flush=True)


def check(dist: Path, all_tests: bool) -> list[str]:
    problems: list[str] = []
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        return [f"{dist} should hold one sdist and one wheel, not {sdists + wheels}"]
    sdist, wheel = sdists[0], wheels[0]

    relative = relative_links(long_description(wheel))
    if relative:
        problems.append(f"the long description of {wheel.name} has relative links: {relative}")
    else:
        say(f"{wheel.name}: every link of the long description is absolute")

    with tempfile.TemporaryDirectory(prefix="halt-rollout-sdist-") as scratch:
        with tarfile.open(sdist) as archive:
            archive.extractall(scratch, filter="data")
        (unpacked,) = Path(scratch).iterdir()
        files = {str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if not p.is_dir()}
        tracked = tracked_files()
        if tracked is None:
            say("not a git clone: the sdist's files not compared with git's")
        else:
            missing = sorted(tracked - files - LEFT_OUT)
            extra = sorted(f for f in files - tracked if not GENERATED.match(f))
            if missing:
                problems.append(f"the sdist lacks files of the repository: {missing}")
            if extra:
                problems.append(f"the sdist has files the repository does not track: {extra}")
            if not missing and not extra:
                say(f"{sdist.name}: every tracked file but {sorted(LEFT_OUT)}")

        again = Path(scratch) / "dist"
        done = subprocess.run(
            [sys.executable, "scripts/build-dists.py", str(again)],
            cwd=unpacked,
            capture_output=True,
            text=True,
            check=False,
        )
        rebuilt = sorted(again.glob("*.whl"))
        if done.returncode != 0 or len(rebuilt) != 1:
            problems.append(f"the unpacked sdist does not build: {done.stderr[-2000:]}")
            return problems
        if wheel_files(rebuilt[0]) != wheel_files(wheel):
            problems.append("the wheel built from the sdist differs from the one built here")
        else:
            say(f"the unpacked sdist builds {rebuilt[0].name} again, the same")

        # Its own code, not this checkout's (which .venv has installed, editable).
        where = subprocess.run(
            [
                sys.executable,
                "-c",
                "import halt_rollout, store_emulator, tests; "
                "print(halt_rollout.__file__, store_emulator.__file__, tests.__file__)",
            ],
            cwd=unpacked,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if len(where) != 3 or not all(Path(p).is_relative_to(unpacked) for p in where):
            problems.append(f"the tests would import code from elsewhere: {where}")
            return problems
        selection = [] if all_tests else list(TESTS)
        started = time.monotonic()
        ran = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
            cwd=unpacked,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
        last = ran.stdout.strip().splitlines()[-1:] or ["(no output)"]
        if ran.returncode != 0:
            print(ran.stdout[-6000:], ran.stderr[-2000:], sep="\n", file=sys.stderr)
            problems.append(f"the tests failed in the unpacked sdist: {last[0]}")
        else:
            which = "the whole suite" if all_tests else f"{len(TESTS)} test files"
            say(f"{which} from the unpacked sdist: {last[0]} ({took:.0f} s)")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder scripts/build-dists.py wrote")
    parser.add_argument("--all-tests", action="store_true", help="run the whole suite")
    args = parser.parse_args(argv)
    problems = check(args.dist.resolve(), args.all_tests)
    for problem in problems:
        print(f"check-dists: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
