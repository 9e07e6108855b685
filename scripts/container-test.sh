#!/usr/bin/env bash
# Builds the action's image with buildah and runs it the way GitHub runs a
# Docker container action, against the local Store emulator.
#
#   (a) a real halt (app 9NBLGGH4R315, client secret): exit 0, result=halted in
#       GITHUB_OUTPUT, a job summary, and a halt POST seen by the emulator;
#   (b) a bad input (app-id 9NBL/../x): exit 1, an ::error line, result=failed,
#       and not one request seen by the emulator.
#
# What `make container-test` runs, and `.ci/run` through it. Needs root (buildah
# and debootstrap). When buildah is missing it is installed with apt-get in CI
# (CI=true) and the test is skipped elsewhere. With no registry access the base
# image is a stand-in built from Debian's packages (scripts/build-stand-in-base.sh);
# set CONTAINER_TEST_BASE_IMAGE (e.g. docker.io/library/python:3.11-slim-bookworm)
# to build on a real base instead. STORAGE_DRIVER, if set, is passed to buildah;
# otherwise overlay is used when it works here and vfs when it does not.
# CONTAINER_TEST_KEEP=1 keeps the run's files (logs, outputs, summaries).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
IMAGE=${CONTAINER_TEST_IMAGE:-localhost/halt-rollout:test}
VENV_PY=$ROOT/.venv/bin/python
APP_ID=9NBLGGH4R315
export BUILDAH_ISOLATION=chroot
START=$SECONDS

say() { printf 'container-test: %s\n' "$*"; }
fail() {
    printf 'container-test: FAILED: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- tools -------------------------------------------------------------------
missing=()
command -v buildah >/dev/null || missing+=(buildah)
if [[ -z "${CONTAINER_TEST_BASE_IMAGE:-}" ]]; then
    command -v debootstrap >/dev/null || missing+=(debootstrap)
fi
if [[ $(id -u) != 0 ]]; then
    if [[ "${CI:-}" == true ]] && sudo -n true 2>/dev/null; then
        say "re-running as root with sudo (buildah and debootstrap need root)"
        exec sudo --preserve-env=CI,STORAGE_DRIVER,CONTAINER_TEST_BASE_IMAGE,CONTAINER_TEST_IMAGE,CONTAINER_TEST_KEEP \
            bash "$0" "$@"
    fi
    say "SKIPPED: needs root (buildah builds and runs images here; debootstrap builds the base)"
    exit 0
fi
if ((${#missing[@]})); then
    if [[ "${CI:-}" != true ]]; then
        say "SKIPPED: ${missing[*]} not installed; install with: apt-get install -y buildah debootstrap"
        exit 0
    fi
    say "installing ${missing[*]} with apt-get (CI)"
    t=$(now)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    say "installed ${missing[*]} in $(since "$t") s"
fi
if [[ ! -x "$VENV_PY" ]]; then
    say "no .venv yet: make venv"
    make --no-print-directory venv
fi

# --- state and cleanup -------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/halt-rollout-container-test.XXXXXX")
EMULATOR_PID=""
CONTAINERS=()
cleanup() {
    local rc=$?
    if [[ -n "$EMULATOR_PID" ]] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    local c
    for c in "${CONTAINERS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
    if [[ -n "${CONTAINER_TEST_KEEP:-}" ]]; then
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
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- buildah storage ---------------------------------------------------------
# overlay when it works on this file system; vfs (slower, more disk) when not,
# or when STORAGE_DRIVER=vfs asks for it, in a storage of its own so that the
# two drivers never share one (buildah refuses a storage made by the other).
use_vfs() {
    cat >"$WORK/storage.conf" <<'EOF'
[storage]
driver = "vfs"
graphroot = "/var/lib/containers/storage-vfs"
runroot = "/run/containers/storage-vfs"
EOF
    export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" STORAGE_DRIVER=vfs
}
case "${STORAGE_DRIVER:-}" in
    vfs) use_vfs ;;
    "")
        if probe=$(buildah from scratch 2>/dev/null) && buildah mount "$probe" >/dev/null 2>&1; then
            buildah rm "$probe" >/dev/null 2>&1 || true
        else
            if [[ -n "${probe:-}" ]]; then buildah rm "$probe" >/dev/null 2>&1 || true; fi
            say "overlay storage does not work here: using vfs"
            use_vfs
        fi
        ;;
esac
say "buildah $(buildah --version | awk '{print $3}'), storage driver $(buildah info --format '{{.store.GraphDriverName}}'), isolation $BUILDAH_ISOLATION"

# --- base and image ----------------------------------------------------------
if [[ -n "${CONTAINER_TEST_BASE_IMAGE:-}" ]]; then
    BASE=$CONTAINER_TEST_BASE_IMAGE
    say "base image: $BASE (given)"
else
    t=$(now)
    BASE=$(bash scripts/build-stand-in-base.sh | tail -n 1)
    say "base image: $BASE (stand-in ready in $(since "$t") s)"
fi

old_id=$(buildah images --quiet --no-trunc "$IMAGE" 2>/dev/null | head -n 1 || true)
say "building $IMAGE from Dockerfile"
t=$(now)
if ! buildah bud --layers --isolation chroot --build-arg "BASE_IMAGE=$BASE" \
    --tag "$IMAGE" --file Dockerfile . >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    fail "buildah bud failed (last lines above)"
fi
BUILD_TIME=$(since "$t")
new_id=$(buildah images --quiet --no-trunc "$IMAGE" | head -n 1)
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    buildah rmi "$old_id" >/dev/null 2>&1 || true # the previous test image; layers stay cached
fi
cached=$(grep -c -- '--> Using cache' "$WORK/build.log" || true)
SIZE=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
BASE_SIZE=$(buildah images --format '{{.Size}}' "$BASE" 2>/dev/null | head -n 1 || true)
say "image $IMAGE: size $SIZE (base ${BASE_SIZE:-?}), built in $BUILD_TIME s ($cached steps from cache)"

# The image's own entry point and command, as `docker run` would combine them
# (the action declares no args).
mapfile -d '' ENTRY < <(buildah inspect --type image "$IMAGE" | python3 -c '
import json, sys
config = json.load(sys.stdin)["OCIv1"]["config"]
argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
sys.stdout.write("".join(a + "\0" for a in argv))
')
((${#ENTRY[@]})) || fail "the image has no ENTRYPOINT"
say "entry point: ${ENTRY[*]}"

# --- emulator ----------------------------------------------------------------
say "starting the Store emulator on loopback"
"$VENV_PY" -m store_emulator --seed demo --env-file "$WORK/emulator.env" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR_PID=$!
EMU_JSON=""
for _ in $(seq 1 150); do
    EMU_JSON=$(python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        data = json.loads(line)
    except ValueError:
        continue
    if isinstance(data, dict) and "url" in {k.lower() for k in data}:
        print(json.dumps({k.lower(): v for k, v in data.items()}))
        break
' "$WORK/emulator.out" 2>/dev/null || true)
    [[ -n "$EMU_JSON" ]] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || {
        cat "$WORK/emulator.err" >&2
        fail "the emulator exited before it was ready"
    }
    sleep 0.2
done
[[ -n "$EMU_JSON" ]] || fail "the emulator printed no settings within 30 s"
emu() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$EMU_JSON" "$1"; }
EMU_URL=$(emu url)
EMU_CA=$(emu ca_path)
TENANT_ID=$(emu tenant_id)
CLIENT_ID=$(emu client_id)
CLIENT_SECRET=$(emu client_secret)
[[ -s "$EMU_CA" ]] || fail "the emulator's CA file $EMU_CA is missing"
say "emulator at $EMU_URL"

# GET /_emulator/requests: the Store, Entra and OIDC requests the emulator has
# seen, as a JSON list of {method, path, ...} (its own control requests left out).
emulator_requests() {
    python3 - "$EMU_URL" "$EMU_CA" <<'EOF'
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

# --- running the action as GitHub does ---------------------------------------
# INPUT_<NAME> for every input declared in action.yml (upper-cased, hyphens
# kept), with the `with:` value, else the declared default, else "".
mapfile -t DECLARED < <("$VENV_PY" -c '
import yaml
with open("action.yml", encoding="utf-8") as f:
    inputs = yaml.safe_load(f).get("inputs") or {}
for name, spec in inputs.items():
    default = (spec or {}).get("default")
    print(name, "" if default is None else default, sep="\t")
')
((${#DECLARED[@]})) || fail "action.yml declares no inputs"

# run_action NAME KEY=VALUE...: runs the image's entry point with those inputs,
# leaves stdout, stderr, outputs.json, summary.md and rc in $WORK/NAME.
run_action() {
    local name=$1
    shift
    local dir="$WORK/$name"
    mkdir -p "$dir/runner/file_commands" "$dir/runner/workspace" "$dir/runner/home" "$dir/runner/workflow"
    local output_file=set_output_$RANDOM$RANDOM summary_file=step_summary_$RANDOM$RANDOM
    : >"$dir/runner/file_commands/$output_file"
    : >"$dir/runner/file_commands/$summary_file"
    cp "$EMU_CA" "$dir/runner/workspace/emulator-ca.pem"

    declare -A with=()
    local kv
    for kv in "$@"; do with[${kv%%=*}]=${kv#*=}; done
    local envs=() line input default
    for line in "${DECLARED[@]}"; do
        input=${line%%$'\t'*}
        default=${line#*$'\t'}
        envs+=(--env "INPUT_${input^^}=${with[$input]-$default}")
        unset "with[$input]"
    done
    ((${#with[@]} == 0)) || fail "run_action $name: not inputs of action.yml: ${!with[*]}"
    envs+=(
        --env HOME=/github/home
        --env GITHUB_WORKSPACE=/github/workspace
        --env "GITHUB_OUTPUT=/github/file_commands/$output_file"
        --env "GITHUB_STEP_SUMMARY=/github/file_commands/$summary_file"
        --env GITHUB_ACTIONS=true
        --env CI=true
        --env GITHUB_ACTION=halt
        --env GITHUB_REPOSITORY=example/halt-rollout
        --env GITHUB_RUN_ID=1
        --env RUNNER_OS=Linux
        --env REQUESTS_CA_BUNDLE=/github/workspace/emulator-ca.pem
    )
    local vols=(
        --volume "$dir/runner/workspace:/github/workspace"
        --volume "$dir/runner/home:/github/home"
        --volume "$dir/runner/workflow:/github/workflow"
        --volume "$dir/runner/file_commands:/github/file_commands"
    )
    local ctr
    ctr=$(buildah from --pull=false --quiet "$IMAGE")
    CONTAINERS+=("$ctr")
    local t rc
    t=$(now)
    set +e
    buildah run --isolation chroot --workingdir /github/workspace "${vols[@]}" "${envs[@]}" \
        "$ctr" -- "${ENTRY[@]}" >"$dir/stdout" 2>"$dir/stderr" </dev/null
    rc=$?
    set -e
    buildah rm "$ctr" >/dev/null 2>&1 || true
    echo "$rc" >"$dir/rc"
    say "[$name] exit $rc in $(since "$t") s; the action's log:"
    sed 's/^/    | /' "$dir/stdout"
    # buildah's own "subprocess exited with status N" lines are not the action's.
    grep -v -e '^subprocess exited with status' -e '^Error: exit status' "$dir/stderr" | sed 's/^/    ! /' || true
    cp "$dir/runner/file_commands/$summary_file" "$dir/summary.md"
    python3 - "$dir/runner/file_commands/$output_file" >"$dir/outputs.json" <<'EOF'
import json, sys
# GITHUB_OUTPUT: `name=value` lines, or `name<<DELIM` ... `DELIM` blocks.
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
out, i = {}, 0
while i < len(lines):
    line = lines[i]
    i += 1
    if not line:
        continue
    if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
        name, delim = line.split("<<", 1)
        value = []
        while i < len(lines) and lines[i] != delim:
            value.append(lines[i])
            i += 1
        if i >= len(lines):
            sys.exit(f"GITHUB_OUTPUT: no closing delimiter {delim!r} for {name!r}")
        i += 1
        out[name] = "\n".join(value)
    elif "=" in line:
        name, value = line.split("=", 1)
        out[name] = value
    else:
        sys.exit(f"GITHUB_OUTPUT: unparseable line {line!r}")
print(json.dumps(out))
EOF
}
output() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$WORK/$1/outputs.json" "$2"; }

# No secret may reach the log, the outputs or the summary. The one place it may
# appear is an `::add-mask::` command, which the runner consumes and never shows.
assert_no_secret() {
    local name=$1 f
    for f in stdout stderr outputs.json summary.md; do
        if grep -v '^::add-mask::' "$WORK/$name/$f" | grep -qF -- "$CLIENT_SECRET"; then
            fail "[$name] the client secret appears in $f"
        fi
    done
}

# (a) a real halt against the emulator
say "(a) halting app $APP_ID's rollout through the emulator"
before=$(emulator_requests)
run_action halt \
    "app-id=$APP_ID" "tenant-id=$TENANT_ID" "client-id=$CLIENT_ID" "client-secret=$CLIENT_SECRET" \
    "store-api-url=$EMU_URL" "authority-host=$EMU_URL" timeout-seconds=60
[[ $(cat "$WORK/halt/rc") == 0 ]] || fail "(a) expected exit 0, got $(cat "$WORK/halt/rc")"
result=$(output halt result)
[[ "$result" == halted ]] || fail "(a) expected result=halted in GITHUB_OUTPUT, got '${result}' (outputs: $(cat "$WORK/halt/outputs.json"))"
[[ -n "$(output halt submission-id)" ]] || fail "(a) no submission-id output"
[[ -s "$WORK/halt/summary.md" ]] || fail "(a) the job summary is empty"
assert_no_secret halt
python3 - "$before" "$(emulator_requests)" "$APP_ID" <<'EOF' || fail "(a) the emulator saw no halt POST for $APP_ID"
import json, sys
before, after, app = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
new = after[len(before):]
halts = [q for q in new if q.get("method") == "POST" and q.get("path", "").rstrip("/").endswith("/haltpackagerollout")
         and f"/applications/{app}/" in q.get("path", "")]
print(f"container-test: (a) the emulator saw {len(new)} requests, {len(halts)} halt POST: "
      + ", ".join(f"{q['method']} {q['path']}" for q in new))
sys.exit(0 if len(halts) == 1 else 1)
EOF
say "(a) ok: exit 0, result=halted, status=$(output halt status), submission $(output halt submission-id), summary $(wc -c <"$WORK/halt/summary.md") bytes"

# (b) a bad input: rejected before any request
say "(b) a bad app-id: nothing may be sent"
before=$(emulator_requests)
run_action bad-input \
    "app-id=9NBL/../x" "tenant-id=$TENANT_ID" "client-id=$CLIENT_ID" "client-secret=$CLIENT_SECRET" \
    "store-api-url=$EMU_URL" "authority-host=$EMU_URL"
[[ $(cat "$WORK/bad-input/rc") == 1 ]] || fail "(b) expected exit 1, got $(cat "$WORK/bad-input/rc")"
grep -q '^::error' "$WORK/bad-input/stdout" || fail "(b) no ::error line on stdout"
result=$(output bad-input result)
[[ "$result" == failed ]] || fail "(b) expected result=failed in GITHUB_OUTPUT, got '${result}'"
if grep -q 'Traceback (most recent call last)' "$WORK/bad-input/stdout" "$WORK/bad-input/stderr"; then
    fail "(b) a Python traceback reached the log"
fi
assert_no_secret bad-input
after=$(emulator_requests)
[[ "$after" == "$before" ]] || fail "(b) the emulator saw requests after a bad input: $(python3 -c '
import json, sys; b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(", ".join(f"{q[\"method\"]} {q[\"path\"]}" for q in a[len(b):]))' "$before" "$after")"
say "(b) ok: exit 1, ::error annotation, result=failed, no request sent"

# A record for `make bench` (docs/benchmarks.md), next to the repository's other local state.
mkdir -p "$ROOT/.container"
python3 - "$ROOT/.container/record.json" "$SIZE" "$BUILD_TIME" "$cached" "$BASE" <<'PY'
import json, subprocess, sys, time
path, size, build, cached, base = sys.argv[1:]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
record = {"image_size": size, "build_seconds": float(build), "cached_steps": int(cached),
          "base_image": base, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
PY
say "summary: image $SIZE, build $BUILD_TIME s; halt and bad-input runs behaved as GitHub would show them"
