#!/usr/bin/env bash
# `make release-rehearsal`: the release's work, here, with buildah on the stand-in base.
#
#   0. builds the sdist and the wheel into dist/ (scripts/build-dists.py, as the release's
#      dists job) and checks them (scripts/check-dists.py): every link of the long
#      description absolute; the sdist holds every tracked file but .ci/ and .gitignore,
#      builds the same wheel again when unpacked, and its tests run from it. This needs no
#      root, so it runs first, as the caller, even where the rest is skipped;
#   1. builds the image once from the Dockerfile, cold (no layer cache), as the release
#      job does on a fresh runner, with the labels the release gives it;
#   2. writes it as an OCI layout, dist/image (tag vX.Y.Z), gzip layers as a registry
#      stores them;
#   3. writes dist/action.yml: main's action.yml with runs.image set to
#      docker://ghcr.io/OWNER/halt-rollout@<that image's manifest digest>
#      (scripts/release-action-yml.py, as the release job runs it);
#   4. checks dist/action.yml against GitHub's action schema, and the layout, the digest
#      and the release action.yml against main's (tests/test_release.py);
#   5. runs the image from the layout as the release action's users would, against the
#      Store emulator: `uses: halt-rollout/halt-rollout@vX.Y.Z` (every input, release
#      action.yml's defaults) and `uses: docker://...@sha256:...` (only `with:` keys), both
#      dry runs that must send no halt;
#   6. writes dist/rehearsal.json with the figures: the compressed bytes a runner pulls
#      (base and ours) and the cold build time, and prints them.
#
# Needs root for buildah and debootstrap (re-run with sudo in CI; skipped elsewhere when
# that cannot be). RELEASE_IMAGE names the registry image (default
# ghcr.io/halt-rollout/halt-rollout); REHEARSAL_BASE_IMAGE=dockerfile builds on the
# Dockerfile's own base (by digest, as the release does), any other value on that image
# (`buildah bud --from`), and unset on the stand-in; STORAGE_DRIVER as for container-test.sh.
#
# Runs from any checkout path: buildah names an image pulled from an OCI layout after the
# layout's path, and image names must be lower case, so the layout is written under a
# directory named with upper case and a space on purpose and pulled through a lower-case
# link (pull_layout).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
NAME=release-rehearsal
START=$SECONDS
# The revision, read before any sudo re-run (git refuses a checkout owned by another user).
REHEARSAL_REVISION=${REHEARSAL_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export REHEARSAL_REVISION
PRESERVE_ENV=RELEASE_IMAGE,REHEARSAL_BASE_IMAGE,REHEARSAL_REVISION,REHEARSAL_DISTS_CHECKED
[[ -n "${REHEARSAL_BASE_IMAGE:-}" ]] && NEED_DEBOOTSTRAP=0
# shellcheck source=scripts/buildah-common.sh
source scripts/buildah-common.sh

# --- 0. the dists PyPI will serve --------------------------------------------
# Once: a sudo re-run of this script (buildah_setup) is told it was done.
if [[ -z "${REHEARSAL_DISTS_CHECKED:-}" ]]; then
    [[ -x "$VENV_PY" ]] || make --no-print-directory -C "$ROOT" venv
    mkdir -p dist
    rm -f dist/*.tar.gz dist/*.whl
    "$VENV_PY" scripts/build-dists.py dist >/dev/null 2>"dist/build-dists.log" \
        || { cat dist/build-dists.log >&2; fail "scripts/build-dists.py failed"; }
    rm -f dist/build-dists.log
    "$VENV_PY" scripts/check-dists.py dist || fail "the dists are not what PyPI should serve"
    say "wrote and checked $(cd dist && echo *.tar.gz *.whl)"
    export REHEARSAL_DISTS_CHECKED=1
fi

buildah_setup "$ROOT/scripts/release-rehearsal.sh" "$@" || exit 0

RELEASE_IMAGE=${RELEASE_IMAGE:-ghcr.io/halt-rollout/halt-rollout}
VERSION=$("$VENV_PY" -c 'import halt_rollout; print(halt_rollout.__version__)')
TAG=v$VERSION
# Unique per run: other builds may share this machine's buildah storage.
LOCAL=localhost/halt-rollout-rehearsal-$$:built
FROM_LAYOUT=localhost/halt-rollout-rehearsal-$$:from-layout
CLEANUP_IMAGES+=("$LOCAL" "$FROM_LAYOUT")
DIST=$ROOT/dist
LAYOUT=$DIST/image

WORK=$(mktemp -d "${TMPDIR:-/tmp}/halt-rollout-rehearsal.XXXXXX")
EMULATOR_PID=""
trap end_run EXIT
trap 'exit 130' INT TERM

buildah_storage "$WORK"

# pull_layout LAYOUT TAG NAME: the image tagged TAG in the OCI layout, pulled into buildah's
# storage and named NAME. buildah names it after the layout's path, which must then be a
# valid (lower-case) image name: the pull goes through a lower-case link, removed after.
pull_layout() {
    local layout=$1 tag=$2 name=$3 link id
    link=$(mktemp -u /tmp/halt-rollout-layout.XXXXXXXX | tr '[:upper:]' '[:lower:]')
    ln -s "$layout" "$link"
    id=$(buildah pull --quiet "oci:$link:$tag" | tail -n 1) || {
        rm -f "$link"
        fail "buildah could not pull $tag from the layout $layout"
    }
    buildah tag "$id" "$name"
    buildah rmi "localhost$link:latest" "localhost$link:$tag" >/dev/null 2>&1 || true
    rm -f "$link"
}

# --- 1. the image, built once, cold ------------------------------------------
choose_base "${REHEARSAL_BASE_IMAGE:-}"
REVISION=$REHEARSAL_REVISION
say "building $LOCAL ($TAG, revision $REVISION) from Dockerfile, without any layer cache"
t=$(now)
if ! buildah bud --layers --no-cache --isolation chroot "${FROM_ARGS[@]}" \
    --label "org.opencontainers.image.source=https://github.com/${RELEASE_IMAGE#*/}" \
    --label "org.opencontainers.image.version=$TAG" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --tag "$LOCAL" --file Dockerfile . >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    fail "buildah bud failed (last lines above)"
fi
BUILD_SECONDS=$(since "$t")
say "built in $BUILD_SECONDS s (cold: every step ran, the base was already here)"

# --- 2. the OCI layout --------------------------------------------------------
# Written first where upper case and a space are in its path (see pull_layout), pulled back
# from there in step 5, and moved to dist/image.
rm -rf "$LAYOUT" "$DIST/action.yml" "$DIST/rehearsal.json"
mkdir -p "$DIST" "$WORK/Rehearsal Layout"
buildah push --quiet --format oci --compression-format gzip --digestfile "$WORK/digest" \
    "$LOCAL" "oci:$WORK/Rehearsal Layout/image:$TAG"
DIGEST=$(cat "$WORK/digest")
pull_layout "$WORK/Rehearsal Layout/image" "$TAG" "$FROM_LAYOUT"
mv "$WORK/Rehearsal Layout/image" "$LAYOUT"
say "wrote the OCI layout $LAYOUT ($TAG), manifest $DIGEST"

# --- 3. the release action.yml -------------------------------------------------
REFERENCE=$("$VENV_PY" scripts/release-action-yml.py --image "$RELEASE_IMAGE" \
    --oci-layout "$LAYOUT" --tag "$TAG" --source action.yml --out "$DIST/action.yml")
[[ "$REFERENCE" == "docker://$RELEASE_IMAGE@$DIGEST" ]] \
    || fail "dist/action.yml names $REFERENCE, but buildah pushed $DIGEST"
say "wrote dist/action.yml: runs.image $REFERENCE"
diff -u action.yml "$DIST/action.yml" | sed 's/^/    /' || true

# --- 4. schema and consistency ---------------------------------------------------
"$ROOT/.venv/bin/check-jsonschema" --builtin-schema vendor.github-actions "$DIST/action.yml"
REHEARSAL_DIST=$DIST "$VENV_PY" -m pytest -q -p no:cacheprovider tests/test_release.py \
    || fail "tests/test_release.py failed on dist/"

# --- 5. the released image, run as its users run it -------------------------------
# FROM_LAYOUT was pulled back from the layout in step 2, as a runner pulls the image from
# the registry (same config digest, so the same image ID as the one built).
[[ $(buildah images --quiet --no-trunc "$FROM_LAYOUT") == $(buildah images --quiet --no-trunc "$LOCAL") ]] \
    || fail "the image pulled from the layout is not the one built"
# What PyPI's users never see but the image would carry: actions-toolkit's stray top-level
# `tests` package (removed by the Dockerfile); and the installed packages must be whole.
ctr=$(buildah from --quiet "$FROM_LAYOUT")
buildah run "$ctr" -- /usr/local/bin/python -I -c '
import importlib.util, sys
found = importlib.util.find_spec("tests")
sys.exit(f"the image has a top-level tests package: {found.origin}" if found else 0)' \
    || { buildah rm "$ctr" >/dev/null; fail "the image carries a stray tests package"; }
buildah run "$ctr" -- /usr/local/bin/python -m pip check --disable-pip-version-check \
    || { buildah rm "$ctr" >/dev/null; fail "pip check failed in the image"; }
buildah rm "$ctr" >/dev/null
say "the image has no stray tests package, and pip check passes in it"
start_emulator "$WORK"
DRY_RUN=(
    --with app-id=9NBLGGH4R315 --with dry-run=true
    --with "tenant-id=$TENANT_ID" --with "client-id=$CLIENT_ID" --with "client-secret=$CLIENT_SECRET"
    --with "store-api-url=$EMU_URL" --with "authority-host=$EMU_URL"
    --file "emulator-ca.pem=$EMU_CA" --env REQUESTS_CA_BUNDLE=/github/workspace/emulator-ca.pem
)
before=$(emulator_requests)
run_step release-action "$FROM_LAYOUT" --action-yml "$DIST/action.yml" "${DRY_RUN[@]}"
run_step docker-step "$FROM_LAYOUT" --docker-step "${DRY_RUN[@]}"
for step in release-action docker-step; do
    [[ $(step_field "$step" exit_code) == 0 ]] || fail "[$step] expected exit 0"
    [[ $(output "$step" result) == dry-run ]] || fail "[$step] expected result=dry-run, got '$(output "$step" result)'"
done
"$VENV_PY" - "$before" "$(emulator_requests)" <<'EOF' || fail "a dry run sent a halt"
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.exit(any(q["method"] == "POST" and q["path"].endswith("/haltpackagerollout") for q in after[len(before):]))
EOF
say "both dry runs: exit 0, result=dry-run, no halt sent"

# --- 6. the figures ---------------------------------------------------------------
BASE_LAYERS=$(buildah inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' "$BASE")
"$VENV_PY" scripts/oci-layout-figures.py "$LAYOUT" "$TAG" "$BASE_LAYERS" >"$WORK/figures.json"
"$VENV_PY" - "$WORK/figures.json" "$DIST/rehearsal.json" "$BUILD_SECONDS" "$BASE_SECONDS" \
    "$BASE" "$TAG" "$REFERENCE" <<'EOF'
import json, sys, time
figures_path, out, build, base_seconds, base, tag, reference = sys.argv[1:]
figures = json.load(open(figures_path, encoding="utf-8"))
record = {
    "tag": tag,
    "runs_image": reference,
    "base_image": base,
    "cold_build_seconds": float(build),
    "base_ready_seconds": float(base_seconds),
    **{k: figures[k] for k in ("digest", "compressed_bytes", "base_compressed_bytes",
                               "own_compressed_bytes", "layers", "layer_media_types")},
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
mb = lambda n: f"{n / 1e6:.1f} MB"
print(f"release-rehearsal: image {tag} {figures['digest']}")
print(f"release-rehearsal: a runner pulls {mb(record['compressed_bytes'])} compressed "
      f"(base {mb(record['base_compressed_bytes'])} + ours {mb(record['own_compressed_bytes'])}, "
      f"{len(record['layers'])} layers)")
print(f"release-rehearsal: the cold build it replaces took {record['cold_build_seconds']:.1f} s "
      "(base already present; on a hosted runner the base is pulled first)")
EOF
say "wrote dist/rehearsal.json"
