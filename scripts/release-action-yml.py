"""Write the release action.yml: main's, with `runs.image` pointing at the image by digest.

    scripts/release-action-yml.py --image ghcr.io/OWNER/halt-rollout --digest sha256:HEX \\
        [--source action.yml] [--out PATH]
    scripts/release-action-yml.py --image ... --oci-layout dist/image --tag vX.Y.Z ...

Main's action.yml says `image: Dockerfile` (for `uses: ./` and forks); a release commit
says `image: docker://ghcr.io/OWNER/halt-rollout@sha256:...`, so that `@v1`, `@vX.Y.Z` and
`@<release commit>` start the exact image the release built, without building anything.
Only that one line changes: the text is edited, not re-serialised, so comments, order and
every other byte stay main's. Standard library only: the release job runs it with the
runner's own python3. Prints the new `runs.image` value.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Registry references must be lower case; the digest is the manifest's, sha256 only.
IMAGE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TOP_LEVEL = re.compile(r"[A-Za-z_][\w-]*\s*:")
IMAGE_LINE = re.compile(r"(?P<indent>[ \t]+)image:[ \t]*(?P<value>[^#\n]*?)[ \t]*(?P<comment>#.*)?")
MAIN_IMAGE = ("Dockerfile", '"Dockerfile"', "'Dockerfile'")
REF_NAME = "org.opencontainers.image.ref.name"


class ReleaseError(Exception):
    pass


def release_image(image: str, digest: str) -> str:
    if not IMAGE.fullmatch(image) or "@" in image:
        raise ReleaseError(f"not an image name (lower case, registry/owner/name): {image!r}")
    if not DIGEST.fullmatch(digest):
        raise ReleaseError(f"not a sha256 digest: {digest!r}")
    return f"docker://{image}@{digest}"


def release_action_yml(source: str, image_reference: str) -> str:
    """main's action.yml text with its one `runs.image: Dockerfile` line replaced."""
    lines = source.splitlines(keepends=True)
    in_runs = False
    found: list[tuple[int, re.Match[str]]] = []
    for number, line in enumerate(lines):
        if TOP_LEVEL.match(line):
            in_runs = line.split(":", 1)[0].strip() == "runs"
            continue
        if in_runs and (match := IMAGE_LINE.fullmatch(line.rstrip("\r\n"))):
            found.append((number, match))
            if match["value"] not in MAIN_IMAGE:
                raise ReleaseError(
                    f"runs.image is {match['value']!r}, not Dockerfile: is this main's action.yml?"
                )
    if len(found) != 1:
        raise ReleaseError(f"expected one runs.image line in action.yml, found {len(found)}")
    [(number, match)] = found
    ending = lines[number][len(lines[number].rstrip("\r\n")) :]
    comment = f" {match['comment']}" if match["comment"] else ""
    lines[number] = f"{match['indent']}image: {image_reference}{comment}{ending}"
    return "".join(lines)


def layout_digest(layout: Path, tag: str | None) -> str:
    """The manifest digest of the image in an OCI layout: the one named `tag`, or the only one."""
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReleaseError(f"{layout} is not an OCI layout: {error}") from None
    manifests = index.get("manifests") or []
    if tag is not None:
        manifests = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == tag]
    if len(manifests) != 1:
        which = f"tagged {tag!r}" if tag is not None else "in all"
        raise ReleaseError(f"{layout}: expected one manifest {which}, found {len(manifests)}")
    digest = manifests[0].get("digest", "")
    if not isinstance(digest, str):
        raise ReleaseError(f"{layout}: the manifest has no digest")
    return digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="e.g. ghcr.io/halt-rollout/halt-rollout")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--digest", help="the registry's manifest digest, sha256:...")
    which.add_argument("--oci-layout", type=Path, help="an OCI layout holding the image")
    parser.add_argument("--tag", help="with --oci-layout: the image's tag in the layout")
    parser.add_argument("--source", type=Path, default=Path("action.yml"))
    parser.add_argument("--out", type=Path, help="where to write it (default: over --source)")
    args = parser.parse_args(argv)
    try:
        digest = args.digest or layout_digest(args.oci_layout, args.tag)
        reference = release_image(args.image, digest)
        text = release_action_yml(args.source.read_bytes().decode("utf-8"), reference)
    except (ReleaseError, OSError) as error:
        print(f"release-action-yml: {error}", file=sys.stderr)
        return 1
    out = args.out or args.source
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))  # line ends as main's
    print(reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
