"""Check that the hashed locks install as written and survive Dependabot's updates.

    scripts/check-lock.py [requirements.txt requirements-dev.txt]

`pip install --require-hashes -r LOCK` (no --no-deps) works on a fresh machine only when
the lock is closed: every dependency that each locked package declares (for Linux and
CPython 3.11, the image's and CI's platform) is itself locked, at a version it accepts.
Dependabot's pip updater recompiles `X.in` into `X.txt` with options it reads from the old
lock (--generate-hashes, --allow-unsafe, ...; dependabot-core python/lib/dependabot/python/
file_updater/pip_compile_file_updater.rb, pip_compile_options_from_compiled_file), never
with an override or a constraint kept elsewhere: so the lock must be what a plain compile of
its `.in` gives, and its header must say so. The declared dependencies are read from the
packages installed in this environment (`make venv` installs the dev lock), offline.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
# The image's and CI's platform: Linux, CPython 3.11.
TARGET: dict[str, str] = {
    **{k: str(v) for k, v in default_environment().items()},
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_version": "3.11.9",
    "extra": "",
}


def pins(text: str) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in text.splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match[1])] = Version(match[2])
    return found


def header_problems(name: str, text: str) -> list[str]:
    header = " ".join(line for line in text.splitlines()[:3] if line.startswith("#"))
    problems = []
    for option in ("--override", "--constraint", " -c ", "--no-deps"):
        if option in header:
            problems.append(f"{name}: compiled with {option.strip()}, which Dependabot never uses")
    if "--generate-hashes" not in header:
        problems.append(f"{name}: not compiled with --generate-hashes")
    return problems


def closure_problems(name: str, locked: dict[str, Version]) -> list[str]:
    problems = []
    for package, version in sorted(locked.items()):
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: {package} is locked but not installed here (make venv)")
            continue
        if Version(dist.version) != version:
            problems.append(f"{name}: {package}=={version} is locked, {dist.version} installed")
            continue
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(TARGET):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in locked:
                problems.append(
                    f"{name}: {package} needs {requirement}, which the lock leaves out "
                    "(pip install -r would fetch it unhashed and fail)"
                )
            elif not requirement.specifier.contains(locked[needed], prereleases=True):
                problems.append(
                    f"{name}: {package} needs {requirement}, the lock has {locked[needed]}"
                )
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [REPO / "requirements.txt", REPO / "requirements-dev.txt"]
    problems: list[str] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        locked = pins(text)
        problems += header_problems(path.name, text)
        problems += closure_problems(path.name, locked)
        print(f"check-lock: {path.name}: {len(locked)} packages")
    for problem in problems:
        print(f"check-lock: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("check-lock: every lock is closed and compiled as Dependabot compiles it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
