"""Build the sdist and the wheel for PyPI with the locked setuptools, offline.

    scripts/build-dists.py OUTDIR

The PEP 517 hooks of setuptools (pinned, with hashes, in requirements-dev.txt and so in
.venv/) are called directly: no isolated build environment is downloaded, so what is
published is built from the same locked tools the tests ran with. Prints the files made.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from setuptools import build_meta

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)  # the hooks work on the project in the current directory
    with contextlib.redirect_stdout(sys.stderr):  # setuptools' progress is not the result
        sdist = build_meta.build_sdist(str(out))
        wheel = build_meta.build_wheel(str(out))
    for name in (sdist, wheel):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
