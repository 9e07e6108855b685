"""Check the house rule that no module is over 400 lines, for `make lint`.

    scripts/check-module-size.py [FOLDER ...]

Every Python module and shell script under halt_rollout/, store_emulator/ and scripts/
(or the folders named) counts. A longer file mixes jobs: split it along them, each in a
module whose name says its job. Import circles are import-linter's (pyproject.toml); no
tool counts lines, so this does.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("halt_rollout", "store_emulator", "scripts")
MAX_LINES = 400
SUFFIXES = (".py", ".sh")


def too_long(folders: list[Path]) -> list[tuple[Path, int]]:
    """Every module in `folders` over MAX_LINES, with its number of lines."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix not in SUFFIXES or "__pycache__" in path.parts:
                continue
            lines = len(path.read_bytes().splitlines())
            if lines > MAX_LINES:
                found.append((path, lines))
    return found


def main(argv: list[str]) -> int:
    folders = [Path(name) for name in argv] or [REPO / name for name in FOLDERS]
    found = too_long(folders)
    for path, lines in found:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(
            f"{shown}: {lines} lines, over the house's {MAX_LINES}: split it along its jobs",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
