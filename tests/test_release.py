"""The release ships what was tested (README, "Releasing"): the release action.yml and the
image behind it.

The first tests check scripts/release-action-yml.py and scripts/oci-layout-figures.py on
made-up digests and layouts. Those at the end check what `make release-rehearsal` wrote
under dist/; they run when REHEARSAL_DIST names that folder (the rehearsal sets it).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import halt_rollout
from store_emulator.action_files import dockerfile_entrypoint

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "release-action-yml.py"
FIGURES = REPO / "scripts" / "oci-layout-figures.py"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
IMAGE = "ghcr.io/halt-rollout/halt-rollout"
DIGEST = "sha256:" + "ab" * 32
TAG = f"v{halt_rollout.__version__}"
DIST = os.environ.get("REHEARSAL_DIST")


def script(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def assert_release_of_main(release: Path, reference: str) -> None:
    """Identical to main's action.yml but for runs.image, which is `reference`."""
    main, released = load(REPO / "action.yml"), load(release)
    assert main["runs"]["image"] == "Dockerfile"
    assert released["runs"]["image"] == reference
    main["runs"]["image"] = reference
    assert released == main
    before = (REPO / "action.yml").read_bytes().splitlines()
    after = release.read_bytes().splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        (b"  image: Dockerfile", f"  image: {reference}".encode())
    ]


def assert_valid_action(path: Path) -> None:
    done = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-actions", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_release_action_yml_is_mains_with_the_image_by_digest(tmp_path: Path) -> None:
    out = tmp_path / "action.yml"
    done = script("--image", IMAGE, "--digest", DIGEST, "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"docker://{IMAGE}@{DIGEST}"
    assert_release_of_main(out, f"docker://{IMAGE}@{DIGEST}")
    assert_valid_action(out)


@pytest.mark.parametrize(
    ("image", "digest", "message"),
    [
        ("ghcr.io/Halt-Rollout/halt-rollout", DIGEST, "not an image name"),
        ("ghcr.io/halt-rollout/halt-rollout:v1", DIGEST, "not an image name"),
        ("halt-rollout", DIGEST, "not an image name"),
        (IMAGE, "v1.2.3", "not a sha256 digest"),
        (IMAGE, "sha256:" + "ab" * 31, "not a sha256 digest"),
        (IMAGE, "sha512:" + "ab" * 64, "not a sha256 digest"),
        (IMAGE, "sha256:" + "AB" * 32, "not a sha256 digest"),
    ],
)
def test_only_an_image_name_and_a_sha256_digest_are_taken(
    tmp_path: Path, image: str, digest: str, message: str
) -> None:
    done = script("--image", image, "--digest", digest, "--out", tmp_path / "a.yml")
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "a.yml").exists()


def test_a_released_action_yml_is_not_released_again(tmp_path: Path) -> None:
    once = tmp_path / "once.yml"
    assert script("--image", IMAGE, "--digest", DIGEST, "--out", once).returncode == 0
    done = script("--image", IMAGE, "--digest", DIGEST, "--source", once, "--out", tmp_path / "b")
    assert done.returncode == 1
    assert "not Dockerfile" in done.stderr


def test_only_the_image_of_runs_changes_and_line_ends_are_kept(tmp_path: Path) -> None:
    source = tmp_path / "action.yml"
    source.write_bytes(
        b"name: x\r\ndescription: y\r\ninputs:\r\n  image:\r\n    description: an input\r\n"
        b"runs:\r\n  using: docker\r\n  image: 'Dockerfile' # built by uses: ./\r\n"
    )
    out = tmp_path / "out.yml"
    assert (
        script("--image", IMAGE, "--digest", DIGEST, "--source", source, "--out", out).returncode
        == 0
    )
    assert out.read_bytes() == (
        b"name: x\r\ndescription: y\r\ninputs:\r\n  image:\r\n    description: an input\r\n"
        b"runs:\r\n  using: docker\r\n  image: docker://"
        + f"{IMAGE}@{DIGEST}".encode()
        + b" # built by uses: ./\r\n"
    )


def test_an_action_yml_without_one_runs_image_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "action.yml"
    source.write_text("name: x\nruns:\n  using: node24\n  main: index.js\n", encoding="utf-8")
    done = script("--image", IMAGE, "--digest", DIGEST, "--source", source)
    assert done.returncode == 1
    assert "found 0" in done.stderr


# OCI layouts -------------------------------------------------------------------------------


def write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(layout: Path, tags: list[str], layer_sizes: tuple[int, ...] = (300, 40)) -> None:
    """A small but real OCI layout: one image per tag, layers of random-looking bytes."""
    manifests = []
    for number, tag in enumerate(tags):
        layers = [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
            | write_blob(layout, gzip.compress(os.urandom(size), mtime=0))
            for size in layer_sizes
        ]
        config = {
            "config": {"Entrypoint": ["/usr/local/bin/python", "/action/entrypoint.py"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{number:064x}"] * len(layers)},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}
            | write_blob(layout, json.dumps(config).encode()),
            "layers": layers,
        }
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
            | write_blob(layout, json.dumps(manifest).encode())
        )
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}', encoding="utf-8")
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": manifests}), encoding="utf-8"
    )


def tagged_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    [digest] = [
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == tag
    ]
    return str(digest)


def test_the_digest_comes_from_the_layouts_manifest_for_the_tag(tmp_path: Path) -> None:
    layout = tmp_path / "image"
    make_layout(layout, ["v0.9.0", TAG])
    out = tmp_path / "action.yml"
    done = script("--image", IMAGE, "--oci-layout", layout, "--tag", TAG, "--out", out)
    assert done.returncode == 0, done.stderr
    assert_release_of_main(out, f"docker://{IMAGE}@{tagged_digest(layout, TAG)}")


@pytest.mark.parametrize(("tags", "tag"), [(["v0.9.0"], TAG), (["a", "b"], None)])
def test_a_layout_without_exactly_one_such_image_is_refused(
    tmp_path: Path, tags: list[str], tag: str | None
) -> None:
    make_layout(tmp_path / "image", tags)
    args: list[str | Path] = ["--image", IMAGE, "--oci-layout", tmp_path / "image"]
    done = script(*args, *(["--tag", tag] if tag else []), "--out", tmp_path / "a.yml")
    assert done.returncode == 1
    assert "expected one manifest" in done.stderr


def figures(layout: Path, tag: str, base_layers: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FIGURES), str(layout), tag, str(base_layers)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_figures_add_up_the_compressed_blobs(tmp_path: Path) -> None:
    layout = tmp_path / "image"
    make_layout(layout, [TAG], layer_sizes=(5000, 700, 60))
    done = figures(layout, TAG, 1)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    blobs = {p.name: p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir()}
    assert seen["digest"] == tagged_digest(layout, TAG)
    assert seen["compressed_bytes"] == sum(blobs.values())  # manifest, config and layers
    assert seen["base_compressed_bytes"] == seen["layers"][0]
    assert seen["own_compressed_bytes"] == sum(seen["layers"][1:])
    assert seen["entrypoint"] == ["/usr/local/bin/python", "/action/entrypoint.py"]


def test_a_damaged_blob_is_found(tmp_path: Path) -> None:
    layout = tmp_path / "image"
    make_layout(layout, [TAG])
    manifest = json.loads(
        (layout / "blobs" / "sha256" / tagged_digest(layout, TAG)[7:]).read_text()
    )
    layer = layout / "blobs" / "sha256" / manifest["layers"][1]["digest"][7:]
    layer.write_bytes(layer.read_bytes()[:-1] + b"?")
    done = figures(layout, TAG, 1)
    assert done.returncode != 0
    assert "sha256" in done.stderr


# What `make release-rehearsal` wrote --------------------------------------------------------

rehearsal = pytest.mark.skipif(not DIST, reason="run by make release-rehearsal (REHEARSAL_DIST)")


@rehearsal
def test_dist_action_yml_is_mains_with_the_built_images_digest() -> None:
    dist = Path(str(DIST))
    layout = dist / "image"
    reference = load(dist / "action.yml")["runs"]["image"]
    image, _, digest = reference.removeprefix("docker://").partition("@")
    assert digest == tagged_digest(layout, TAG)
    assert image.startswith("ghcr.io/")
    assert_release_of_main(dist / "action.yml", reference)
    assert_valid_action(dist / "action.yml")


@rehearsal
def test_dist_image_is_complete_and_runs_the_entrypoint() -> None:
    layout = Path(str(DIST)) / "image"
    done = figures(layout, TAG, 0)
    assert done.returncode == 0, done.stderr  # every blob present, sizes and digests right
    seen = json.loads(done.stdout)
    assert seen["entrypoint"] == dockerfile_entrypoint()
    assert seen["entrypoint"][-2:] == ["/usr/local/bin/python", "/action/entrypoint.py"]
    assert seen["cmd"] in (None, [])  # so the runner's `docker run IMAGE` runs only that
    assert seen["labels"]["org.opencontainers.image.version"] == TAG
    assert seen["layer_media_types"] == ["application/vnd.oci.image.layer.v1.tar+gzip"]
