"""What a runner pulls for the image in an OCI layout: its compressed bytes, base and ours.

    scripts/oci-layout-figures.py LAYOUT TAG BASE_LAYER_COUNT

Reads the manifest tagged TAG (org.opencontainers.image.ref.name in index.json), checks
that every blob it names is in the layout with the size and sha256 the manifest says, and
prints JSON: the manifest digest, the compressed size of each layer, of the first
BASE_LAYER_COUNT layers (the base image's) and of the rest (the Dockerfile's), and the
total a pull transfers (manifest, config and layers). The entry point and labels of the
image config come along, for the checks that follow.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"


def blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64:
        raise SystemExit(f"unsupported digest {digest!r}")
    return layout / "blobs" / "sha256" / hexdigest


def checked(layout: Path, descriptor: dict[str, Any]) -> bytes:
    """The blob a descriptor names, after checking its size and digest."""
    path = blob(layout, descriptor["digest"])
    data = path.read_bytes()
    if len(data) != descriptor["size"]:
        raise SystemExit(f"{path}: {len(data)} bytes, the descriptor says {descriptor['size']}")
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != descriptor["digest"]:
        raise SystemExit(f"{path}: its sha256 is not {descriptor['digest']}")
    return data


def figures(layout: Path, tag: str, base_layers: int) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    tagged = [m for m in index["manifests"] if (m.get("annotations") or {}).get(REF_NAME) == tag]
    if len(tagged) != 1:
        raise SystemExit(f"{layout}: {len(tagged)} manifests tagged {tag!r}, expected 1")
    [descriptor] = tagged
    manifest = json.loads(checked(layout, descriptor))
    config_bytes = checked(layout, manifest["config"])
    config = json.loads(config_bytes)
    layers = manifest["layers"]
    for layer in layers:
        checked(layout, layer)
    if not 0 <= base_layers <= len(layers):
        raise SystemExit(f"base layer count {base_layers} out of 0..{len(layers)}")
    sizes = [layer["size"] for layer in layers]
    return {
        "digest": descriptor["digest"],
        "manifest_media_type": descriptor.get("mediaType", ""),
        "layer_media_types": sorted({layer["mediaType"] for layer in layers}),
        "layers": sizes,
        "base_compressed_bytes": sum(sizes[:base_layers]),
        "own_compressed_bytes": sum(sizes[base_layers:]),
        "compressed_bytes": descriptor["size"] + len(config_bytes) + sum(sizes),
        "entrypoint": config.get("config", {}).get("Entrypoint"),
        "cmd": config.get("config", {}).get("Cmd"),
        "labels": config.get("config", {}).get("Labels") or {},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: oci-layout-figures.py LAYOUT TAG BASE_LAYER_COUNT", file=sys.stderr)
        return 2
    print(json.dumps(figures(Path(argv[0]), argv[1], int(argv[2])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
