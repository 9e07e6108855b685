"""What installing costs: the runtime dependencies' size, and the image's (if recorded)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, clean_environment
from .record import Distribution, Image, Size

SIZE_EXCLUDED = ("pip", "setuptools", "_distutils_hack", "pkg_resources")


def installed_size() -> Size:
    """site-packages of a fresh venv from requirements.txt, but for the venv's own tools."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="halt-rollout-size-") as scratch:
        venv = Path(scratch) / "venv"
        python = venv / "bin" / "python"
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                check=True,
                capture_output=True,
                text=True,
            )
            subprocess.run(
                [
                    *(str(python), "-m", "pip", "install", "--quiet"),
                    "--disable-pip-version-check",
                    *("--no-deps", "--require-hashes", "-r", str(REPO / "requirements.txt")),
                ],
                env=clean_environment(),
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            detail = getattr(error, "stderr", "") or ""
            return _size(0, [], started, f"{error}: {detail[-500:]}")
        [site] = list((venv / "lib").glob("python*/site-packages"))
        total = sum(_tree_size(entry) for entry in site.iterdir() if not _excluded(entry.name))
        by_distribution = []
        for record in site.glob("*.dist-info/RECORD"):
            if _excluded(record.parent.name):
                continue
            size = 0
            for line in record.read_text(encoding="utf-8").splitlines():
                path = site / line.split(",")[0]
                if path.is_file():
                    size += path.stat().st_size
            by_distribution.append(Distribution(name=record.parent.name.split("-")[0], bytes=size))
        by_distribution.sort(key=lambda item: item["bytes"], reverse=True)
    return _size(total, by_distribution, started, "")


def _size(total: int, by_distribution: list[Distribution], started: float, error: str) -> Size:
    return Size(
        total=total,
        by_distribution=by_distribution,
        seconds=time.monotonic() - started,
        excluded=list(SIZE_EXCLUDED),
        error=error,
    )


def _excluded(name: str) -> bool:
    stem = re.split(r"[-.]", name, maxsplit=1)[0]
    return stem in SIZE_EXCLUDED or name == "distutils-precedence.pth"


def _tree_size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def container_record() -> Image | None:
    """The container test's record (a JSON file under .container/ naming size and build)."""
    folder = REPO / ".container"
    if not folder.is_dir():
        return None
    for path in sorted(folder.rglob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and any("size" in k for k in data)
            and any("build" in k for k in data)
        ):
            return Image(path=str(path.relative_to(REPO)), data=data)
    return None
