"""The long description PyPI shows: README.md with every relative link made absolute.

PyPI shows the README without the repository around it, so a link to docs/reliability.md
leads nowhere there; nor does a link to #a-heading, because PyPI's renderer (cmarkgfm,
then nh3) gives headings no id. Each relative link and image, and each #anchor, becomes
https://github.com/OWNER/REPO/blob/vX.Y.Z/PATH: the file at this version's release tag
(the Source URL of pyproject.toml's [project.urls], the version of halt_rollout/__init__.py);
an anchor points into the README there. README.md itself stays as it is, in the repository
and in the sdist. Everything else about the package is in pyproject.toml;
scripts/check-dists.py checks the result (no relative link in the wheel's METADATA).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

# Fenced code blocks are literal text: nothing in them is a link.
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# An inline link or image's target: `](target` (`<target>` too), and HTML src and href.
INLINE = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
HTML = re.compile(r"""(<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*["'])([^"']+)""", re.I)
# A link reference definition: `[label]: target`.
REFERENCE = re.compile(r"^( {0,3}\[[^\]]+\]:\s*<?)(\S+?)(?=>?(\s|$))")
ABSOLUTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # https:, mailto:, //host


def absolute(target: str, base: str) -> str:
    """`target` as a URL that works away from the repository."""
    if ABSOLUTE.match(target):
        return target
    if target.startswith("#"):
        return f"{base}/README.md{target}"
    return f"{base}/{target.removeprefix('./').lstrip('/')}"


def long_description(readme: str, base: str) -> str:
    """`readme` with each relative link target, outside code blocks, made absolute."""
    lines, fence = [], ""
    for line in readme.splitlines(keepends=True):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
        else:
            for pattern in (INLINE, HTML, REFERENCE):
                line = pattern.sub(lambda m: m.group(1) + absolute(m.group(2), base), line)  # noqa: PLW2901
        lines.append(line)
    return "".join(lines)


def main() -> None:
    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    init = (HERE / "halt_rollout" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if found is None:
        raise SystemExit("halt_rollout/__init__.py has no __version__")
    base = f"{project['urls']['Source'].rstrip('/')}/blob/v{found.group(1)}"
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    setup(
        long_description=long_description(readme, base),
        long_description_content_type="text/markdown",
    )


if __name__ == "__main__":
    main()
