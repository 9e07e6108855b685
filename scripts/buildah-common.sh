# shellcheck shell=bash disable=SC2034,SC2153
# (SC2034, SC2153: variables this file sets for its caller, and NAME, ROOT, WORK the caller sets)
# Sourced by container-test.sh and release-rehearsal.sh: buildah as root, installed with
# apt-get in CI (CI=true) and skipped elsewhere when missing, a storage driver that works on
# this file system, and the Store emulator as a background process. The caller sets NAME
# (the log prefix) and ROOT (the repository), and sources this with `set -euo pipefail`.
#
# Environment: STORAGE_DRIVER (vfs forces vfs; otherwise overlay when it works here), and
# the caller's own variables, kept across the sudo re-run when listed in PRESERVE_ENV.

export BUILDAH_ISOLATION=chroot
VENV_PY=$ROOT/.venv/bin/python
CLEANUP_IMAGES=()

say() { printf '%s: %s\n' "$NAME" "$*"; }
fail() {
    printf '%s: FAILED: %s\n' "$NAME" "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# buildah_setup SCRIPT ARGS...: re-runs SCRIPT as root with sudo in CI, returns 1 (skip)
# when that cannot be, installs buildah and debootstrap in CI when missing, and builds .venv.
buildah_setup() {
    local script=$1
    shift
    local missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    if [[ "${NEED_DEBOOTSTRAP:-1}" == 1 ]]; then
        command -v debootstrap >/dev/null || missing+=(debootstrap)
    fi
    if [[ $(id -u) != 0 ]]; then
        if [[ "${CI:-}" == true ]] && sudo -n true 2>/dev/null; then
            say "re-running as root with sudo (buildah and debootstrap need root)"
            exec sudo "--preserve-env=CI,STORAGE_DRIVER,${PRESERVE_ENV:-}" bash "$script" "$@"
        fi
        say "SKIPPED: needs root (buildah builds and runs images here; debootstrap builds the base)"
        return 1
    fi
    if ((${#missing[@]})); then
        if [[ "${CI:-}" != true ]]; then
            say "SKIPPED: ${missing[*]} not installed; install with: apt-get install -y buildah debootstrap"
            return 1
        fi
        say "installing ${missing[*]} with apt-get (CI)"
        local t
        t=$(now)
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        say "installed ${missing[*]} in $(since "$t") s"
    fi
    if [[ ! -x "$VENV_PY" ]]; then
        say "no .venv yet: make venv"
        make --no-print-directory -C "$ROOT" venv
    fi
}

# buildah_storage WORK: overlay when it works on this file system; vfs (slower, more disk)
# when not, or when STORAGE_DRIVER=vfs asks for it, in a storage of its own so that the two
# drivers never share one (buildah refuses a storage made by the other).
buildah_storage() {
    local work=$1 probe=""
    use_vfs() {
        cat >"$work/storage.conf" <<'EOF'
[storage]
driver = "vfs"
graphroot = "/var/lib/containers/storage-vfs"
runroot = "/run/containers/storage-vfs"
EOF
        export CONTAINERS_STORAGE_CONF="$work/storage.conf" STORAGE_DRIVER=vfs
    }
    case "${STORAGE_DRIVER:-}" in
        vfs) use_vfs ;;
        "")
            if probe=$(buildah from scratch 2>/dev/null) && buildah mount "$probe" >/dev/null 2>&1; then
                buildah rm "$probe" >/dev/null 2>&1 || true
            else
                if [[ -n "$probe" ]]; then buildah rm "$probe" >/dev/null 2>&1 || true; fi
                say "overlay storage does not work here: using vfs"
                use_vfs
            fi
            ;;
    esac
    say "buildah $(buildah --version | awk '{print $3}'), storage driver $(buildah info --format '{{.store.GraphDriverName}}'), isolation $BUILDAH_ISOLATION"
}

# choose_base GIVEN: sets BASE (the image the build starts from) and FROM_ARGS (what to add
# to `buildah bud`). GIVEN empty: the stand-in built from Debian's packages, put in place of
# the Dockerfile's base with `--from` (buildah's "replace the first FROM"); `dockerfile`: the
# Dockerfile's own FROM, by digest, pulled as the release does; anything else: that image,
# with `--from`.
choose_base() {
    local given=$1
    FROM_ARGS=()
    case "$given" in
        "")
            local t
            t=$(now)
            BASE=$(bash "$ROOT/scripts/build-stand-in-base.sh" | tail -n 1)
            BASE_SECONDS=$(since "$t")
            FROM_ARGS=(--from "$BASE")
            say "base image: $BASE (stand-in for the Dockerfile's, ready in $BASE_SECONDS s)"
            ;;
        dockerfile)
            BASE=$(dockerfile_base)
            BASE_SECONDS=0
            say "base image: $BASE (the Dockerfile's own, by digest)"
            ;;
        *)
            BASE=$given
            BASE_SECONDS=0
            FROM_ARGS=(--from "$BASE")
            say "base image: $BASE (given)"
            ;;
    esac
}

# dockerfile_base: the image of the Dockerfile's one FROM line.
dockerfile_base() {
    awk 'toupper($1) == "FROM" { print $2 }' "$ROOT/Dockerfile"
}

# start_emulator WORK: the Store emulator in the background on loopback (buildah's chroot
# isolation shares this host's network); sets EMULATOR_PID, EMU_URL, EMU_CA, TENANT_ID,
# CLIENT_ID and CLIENT_SECRET. end_run stops EMULATOR_PID.
start_emulator() {
    local work=$1
    "$VENV_PY" -m store_emulator --seed demo --env-file "$work/emulator.env" \
        >"$work/emulator.out" 2>"$work/emulator.err" &
    EMULATOR_PID=$!
    local _
    for _ in $(seq 1 150); do
        [[ -s "$work/emulator.env" ]] && break
        kill -0 "$EMULATOR_PID" 2>/dev/null || {
            cat "$work/emulator.err" >&2
            fail "the emulator exited before it was ready"
        }
        sleep 0.2
    done
    [[ -s "$work/emulator.env" ]] || fail "the emulator wrote no settings within 30 s"
    # KEY=VALUE lines, written whole: read them without running them.
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            EMULATOR_URL) EMU_URL=$value ;;
            EMULATOR_CA_PATH) EMU_CA=$value ;;
            EMULATOR_TENANT_ID) TENANT_ID=$value ;;
            EMULATOR_CLIENT_ID) CLIENT_ID=$value ;;
            EMULATOR_CLIENT_SECRET) CLIENT_SECRET=$value ;;
        esac
    done <"$work/emulator.env"
    [[ -n "${EMU_URL:-}" && -s "${EMU_CA:-}" && -n "${CLIENT_SECRET:-}" ]] \
        || fail "the emulator's settings are incomplete: $(cut -d= -f1 "$work/emulator.env" | tr '\n' ' ')"
    say "emulator at $EMU_URL"
}

# emulator_requests: the Store, Entra and OIDC requests the emulator has seen, as a JSON
# list of {method, path, ...} (its own control requests left out).
emulator_requests() {
    "$VENV_PY" - "$EMU_URL" "$EMU_CA" <<'EOF'
import json, ssl, sys, urllib.request
url, ca = sys.argv[1].rstrip("/"), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
with urllib.request.urlopen(url + "/_emulator/requests", context=ctx, timeout=10) as r:
    data = json.load(r)
if isinstance(data, dict):
    data = data.get("requests", [])
print(json.dumps([q for q in data if not q.get("path", "").startswith("/_emulator")]))
EOF
}

# run_step NAME IMAGE [actions_runner flags...]: one action step in IMAGE, run by
# store_emulator.actions_runner as GitHub's runner runs it; leaves stdout, stderr,
# outputs.json, summary.md and run.json in $WORK/NAME and prints the log.
run_step() {
    local name=$1 image=$2
    shift 2
    local t
    t=$(now)
    "$VENV_PY" -m store_emulator.actions_runner --image "$image" --out "$WORK/$name" "$@" \
        || fail "[$name] the runner emulation could not run the step"
    say "[$name] exit $(step_field "$name" exit_code) in $(since "$t") s; the action's log:"
    sed 's/^/    | /' "$WORK/$name/stdout"
    sed 's/^/    ! /' "$WORK/$name/stderr"
    [[ "$(step_field "$name" file_command_errors)" == "[]" ]] \
        || fail "[$name] the runner could not read the file commands: $(step_field "$name" file_command_errors)"
}

# step_field NAME FIELD: a field of the step's run.json (JSON for lists and objects).
step_field() {
    "$VENV_PY" -c '
import json, sys
value = json.load(open(sys.argv[1], encoding="utf-8"))[sys.argv[2]]
print(value if isinstance(value, (str, int)) else json.dumps(value))' "$WORK/$1/run.json" "$2"
}

# output NAME KEY: one output of the step, as the runner read GITHUB_OUTPUT.
output() {
    "$VENV_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["outputs"].get(sys.argv[2], ""))' \
        "$WORK/$1/run.json" "$2"
}

# The EXIT trap of a script that sets START, WORK and EMULATOR_PID: stops the emulator,
# removes the image names listed in CLEANUP_IMAGES (this run's own; cached layers stay),
# removes WORK unless $1 is non-empty (then says where it is), and says how the run went.
end_run() {
    local rc=$? keep=${1:-} name
    if [[ -n "${EMULATOR_PID:-}" ]] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    for name in "${CLEANUP_IMAGES[@]}"; do
        buildah rmi "$name" >/dev/null 2>&1 || true
    done
    if [[ -n "$keep" ]]; then
        say "kept the run's files in $WORK"
    else
        rm -rf "$WORK"
    fi
    if ((rc == 0)); then
        say "passed in $((SECONDS - START)) s"
    else
        say "failed (exit $rc) after $((SECONDS - START)) s" >&2
    fi
}
