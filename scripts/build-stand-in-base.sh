#!/usr/bin/env bash
# Builds a stand-in for the official `python:3.11-slim-bookworm` image from
# Debian's own packages, for machines that reach Debian's archive and PyPI but
# no container registry (this project's CI machines). The Dockerfile is built
# on it with `--build-arg BASE_IMAGE=<the tag printed here>`; the Dockerfile
# itself stays written for the real official base.
#
# The stand-in is laid out like the official image where the Dockerfile can
# tell: `python`, `python3` and `pip` on /usr/local/bin, Python 3.11 (bookworm's
# 3.11, matching the lock's wheels), no EXTERNALLY-MANAGED marker, LANG=C.UTF-8.
# It also carries this machine's CA bundle (and PIP_CERT pointing at it), so a
# `pip install` inside a build reaches PyPI through this machine's TLS-
# inspecting gateway; that setting lives here, never in the Dockerfile.
#
# The image is cached in buildah's storage and reused while its recipe (this
# script and the CA bundle) is unchanged; it is rebuilt when missing or stale.
#
# Usage: scripts/build-stand-in-base.sh [--force]
# Prints the image reference as the last line of stdout. Progress goes to stderr.
# Environment: STAND_IN_BASE_IMAGE (default localhost/halt-rollout-stand-in-base:bookworm),
#   DEBIAN_MIRROR (default http://deb.debian.org/debian), STORAGE_DRIVER (buildah's).
set -euo pipefail

IMAGE="${STAND_IN_BASE_IMAGE:-localhost/halt-rollout-stand-in-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { printf '%s\n' "build-stand-in-base: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install -y buildah debootstrap)"
done
[[ $(id -u) == 0 ]] || die "debootstrap and buildah's chroot isolation need root"
[[ -s "$HOST_CA_BUNDLE" ]] || die "no CA bundle at $HOST_CA_BUNDLE"

# The recipe's fingerprint: this script and the CA bundle it bakes in.
RECIPE=$(cat "$0" "$HOST_CA_BUNDLE" | sha256sum | cut -c1-16)
LABEL=io.github.halt-rollout.stand-in-recipe

if [[ $FORCE == 0 ]] && buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    have=$(buildah inspect --type image --format "{{index .ImageAnnotations \"$LABEL\"}}{{index .OCIv1.Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)
    if [[ "$have" == *"$RECIPE"* ]]; then
        log "reusing cached $IMAGE (recipe $RECIPE); built in 0 s this run"
        printf '%s\n' "$IMAGE"
        exit 0
    fi
    log "cached $IMAGE is stale (recipe ${have:-unknown}, want $RECIPE): rebuilding"
fi

start=$SECONDS
work=$(mktemp -d /var/tmp/halt-rollout-stand-in.XXXXXX)
ctr=""
cleanup() {
    if [[ -n "$ctr" ]]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

rootfs="$work/rootfs"
log "debootstrap $SUITE (minbase) from $MIRROR into $rootfs"
debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" >&2
    die "debootstrap failed (log above)"
}

# Lay it out like the official image.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python3"
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip3"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
# This machine's CA bundle as the system bundle (pip, requests, curl...).
cp "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
# The official image uses Debian's sources with the default mirror; drop the caches.
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
chroot "$rootfs" /usr/local/bin/python -c 'import sys, ensurepip, venv; assert sys.version_info[:2] == (3, 11), sys.version' \
    || die "the stand-in's python is not 3.11"

log "importing into buildah storage as $IMAGE"
tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
ctr=$(buildah from scratch)
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config \
    --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --env PYTHON_VERSION="$(chroot "$rootfs" /usr/local/bin/python -c 'import platform; print(platform.python_version())')" \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    --cmd python3 \
    --label "$LABEL=$RECIPE" \
    --label org.opencontainers.image.description="Local stand-in for python:3.11-slim-bookworm, built with debootstrap (tests only)" \
    "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
ctr=""

log "built $IMAGE (recipe $RECIPE) in $((SECONDS - start)) s"
printf '%s\n' "$IMAGE"
