"""The action's own files, where the runner emulation finds them: action.yml, the entry
point, the Dockerfile and the ENTRYPOINT it gives the image."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


ACTION_YML = REPO / "action.yml"


ENTRYPOINT = REPO / "entrypoint.py"


DOCKERFILE = REPO / "Dockerfile"


def dockerfile_entrypoint(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The Dockerfile's ENTRYPOINT (exec form), as the image's config holds it."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("ENTRYPOINT "))
    command: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
    return command


def container_command(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The image's ENTRYPOINT, as this machine runs it: its Python is this one and its
    /action/ is the repository (so a test starts the process exactly as the image does)."""
    places = {"/usr/local/bin/python": sys.executable, "/action/entrypoint.py": str(ENTRYPOINT)}
    return [places.get(part, part) for part in dockerfile_entrypoint(dockerfile)]
