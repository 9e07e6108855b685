#!/usr/bin/env bash
# Builds the action's image with buildah and runs it the way GitHub runs a Docker container
# action, against the local Store emulator. The step itself is run by
# store_emulator.actions_runner, the same emulation of actions/runner's ContainerActionHandler
# that the tests use (environment, /github/* mounts, file commands), with `buildah run`.
#
#   (a) a real halt (app 9NBLGGH4R315, client secret): exit 0, result=halted in
#       GITHUB_OUTPUT, a job summary, and a halt POST seen by the emulator;
#   (b) a bad input (app-id 9NBL/../x): exit 1, an ::error line, result=failed,
#       and not one request seen by the emulator;
#   (c) a cancelled run (contract rule 10): the emulator applies the halt but holds its
#       answer back (fault hang_after); once it has the halt POST, SIGINT goes to the action's
#       process in the container. Within 2 s the run ends: exit 1, result=unknown, one
#       `::error title=Run cancelled::`, nothing sent after the halt. `buildah run` does not
#       forward signals as `docker run` does (it kills its child on SIGINT), so the signal
#       goes to the process itself, found through /proc (runner_cancel.cancel_run); and
#       --isolation chroot gives it no PID namespace of its own: what is checked is that it
#       is the container's first process, the ENTRYPOINT exec'd by buildah's runtime with
#       nothing between (PID 1 itself is tested under unshare in tests/test_cancellation.py).
#
# What `make container-test` runs, and `.ci/run` through it. Needs root (buildah
# and debootstrap). When buildah is missing it is installed with apt-get in CI
# (CI=true) and the test is skipped elsewhere. With no registry access the base
# image is a stand-in built from Debian's packages (scripts/build-stand-in-base.sh),
# given to `buildah bud --from`; CONTAINER_TEST_BASE_IMAGE=dockerfile builds on the
# Dockerfile's own base (by digest), and any other value on that image. STORAGE_DRIVER, if set, is passed to buildah;
# otherwise overlay is used when it works here and vfs when it does not.
# CONTAINER_TEST_KEEP=1 keeps the run's files (logs, outputs, summaries).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
NAME=container-test
# Unique per run: other builds may share this machine's buildah storage.
IMAGE=${CONTAINER_TEST_IMAGE:-localhost/halt-rollout-test-$$:test}
APP_ID=9NBLGGH4R315
START=$SECONDS
PRESERVE_ENV=CONTAINER_TEST_BASE_IMAGE,CONTAINER_TEST_IMAGE,CONTAINER_TEST_KEEP
[[ -n "${CONTAINER_TEST_BASE_IMAGE:-}" ]] && NEED_DEBOOTSTRAP=0
# shellcheck source=scripts/buildah-common.sh
source scripts/buildah-common.sh
buildah_setup "$ROOT/scripts/container-test.sh" "$@" || exit 0

# --- state and cleanup -------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/halt-rollout-container-test.XXXXXX")
EMULATOR_PID=""
trap 'end_run "${CONTAINER_TEST_KEEP:-}"' EXIT
trap 'exit 130' INT TERM

buildah_storage "$WORK"

# --- base and image ----------------------------------------------------------
choose_base "${CONTAINER_TEST_BASE_IMAGE:-}"

[[ -n "${CONTAINER_TEST_IMAGE:-}" ]] || CLEANUP_IMAGES+=("$IMAGE")
old_id=$(buildah images --quiet --no-trunc "$IMAGE" 2>/dev/null | head -n 1 || true)
say "building $IMAGE from Dockerfile"
t=$(now)
if ! buildah bud --layers --isolation chroot "${FROM_ARGS[@]}" \
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

# --- emulator ----------------------------------------------------------------
say "starting the Store emulator on loopback"
start_emulator "$WORK"
SIGN_IN=(
    --with "tenant-id=$TENANT_ID" --with "client-id=$CLIENT_ID" --with "client-secret=$CLIENT_SECRET"
    --with "store-api-url=$EMU_URL" --with "authority-host=$EMU_URL"
    # The CA reaches the container through the workspace, as in the CI self-test.
    --file "emulator-ca.pem=$EMU_CA" --env REQUESTS_CA_BUNDLE=/github/workspace/emulator-ca.pem
)

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
run_step halt "$IMAGE" --with "app-id=$APP_ID" --with timeout-seconds=60 "${SIGN_IN[@]}"
[[ $(step_field halt exit_code) == 0 ]] || fail "(a) expected exit 0, got $(step_field halt exit_code)"
result=$(output halt result)
[[ "$result" == halted ]] || fail "(a) expected result=halted in GITHUB_OUTPUT, got '${result}' (outputs: $(cat "$WORK/halt/outputs.json"))"
[[ -n "$(output halt submission-id)" ]] || fail "(a) no submission-id output"
[[ -s "$WORK/halt/summary.md" ]] || fail "(a) the job summary is empty"
assert_no_secret halt
"$VENV_PY" - "$before" "$(emulator_requests)" "$APP_ID" <<'EOF' || fail "(a) the emulator saw no halt POST for $APP_ID"
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
run_step bad-input "$IMAGE" --with "app-id=9NBL/../x" "${SIGN_IN[@]}"
[[ $(step_field bad-input exit_code) == 1 ]] || fail "(b) expected exit 1, got $(step_field bad-input exit_code)"
grep -q '^::error' "$WORK/bad-input/stdout" || fail "(b) no ::error line on stdout"
result=$(output bad-input result)
[[ "$result" == failed ]] || fail "(b) expected result=failed in GITHUB_OUTPUT, got '${result}'"
if grep -q 'Traceback (most recent call last)' "$WORK/bad-input/stdout" "$WORK/bad-input/stderr"; then
    fail "(b) a Python traceback reached the log"
fi
assert_no_secret bad-input
after=$(emulator_requests)
[[ "$after" == "$before" ]] || fail "(b) the emulator saw requests after a bad input: $("$VENV_PY" -c '
import json, sys; b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(", ".join(f"{q[\"method\"]} {q[\"path\"]}" for q in a[len(b):]))' "$before" "$after")"
say "(b) ok: exit 1, ::error annotation, result=failed, no request sent"

# (c) a cancelled run: SIGINT while the halt is in flight
# emulator_control METHOD PATH [JSON]: one call to the emulator's control API (/_emulator/...).
emulator_control() {
    "$VENV_PY" - "$EMU_URL" "$EMU_CA" "$@" <<'EOF'
import ssl, sys, urllib.request
url, ca, method, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 else None
request = urllib.request.Request(f"{url.rstrip('/')}/_emulator/{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca), timeout=10):
    pass
EOF
}
say "(c) cancelling a run while the Store holds the halt's answer back"
published=$("$VENV_PY" -c 'from store_emulator import demo; print(demo.PUBLISHED)')
# (a) halted the app's rollout: in progress again, and the next halt's answer held back.
emulator_control POST rollout "{\"app_id\": \"$APP_ID\", \"submission_id\": \"$published\", \"percentage\": 25}"
emulator_control POST faults '{"method": "POST", "path": "/haltpackagerollout$", "kind": "hang_after"}'
before=$(emulator_requests)
run_step cancelled "$IMAGE" --with "app-id=$APP_ID" --with timeout-seconds=120 "${SIGN_IN[@]}" \
    --cancel-on 'POST:/haltpackagerollout$' --cancel-signal INT \
    --emulator "$EMU_URL" --emulator-ca "$EMU_CA" --timeout 60
emulator_control DELETE faults
cancelled=$(step_field cancelled cancelled)
say "(c) the signal: $cancelled"
"$VENV_PY" - "$cancelled" <<'EOF' || fail "(c) the run did not end within 2 s of SIGINT, or the signal did not reach the container's first process"
import json, sys
c = json.loads(sys.argv[1])
problems = []
if c["run_ended_seconds"] >= 2.0:
    problems.append(f"buildah run ended {c['run_ended_seconds']} s after SIGINT (rule 10: within 2 s)")
# The container's first process: the ENTRYPOINT, exec'd by buildah's chroot runtime itself.
if c["parent"] != "buildah-chroot-exec":
    problems.append(f"the action's process is a child of {c['parent']!r}, not of buildah's runtime")
if c["own_pid_namespace"] and c["pid_in_container"] != 1:
    problems.append(f"in its own PID namespace, but pid {c['pid_in_container']} there, not 1")
where = "its own PID namespace" if c["own_pid_namespace"] else "no PID namespace of its own (--isolation chroot)"
print("container-test: (c) " + ("; ".join(problems) or
      f"the action's process ended {c['process_ended_seconds']} s and buildah run "
      f"{c['run_ended_seconds']} s after SIGINT; pid {c['pid']}, {where}, "
      "the ENTRYPOINT exec'd by buildah-chroot-exec with nothing between"))
sys.exit(1 if problems else 0)
EOF
[[ $(step_field cancelled exit_code) == 1 ]] || fail "(c) expected exit 1, got $(step_field cancelled exit_code)"
result=$(output cancelled result)
[[ "$result" == unknown ]] || fail "(c) expected result=unknown in GITHUB_OUTPUT, got '${result}' (outputs: $(cat "$WORK/cancelled/outputs.json"))"
errors=$(grep -c '^::error' "$WORK/cancelled/stdout" || true)
cancel_errors=$(grep -c '^::error title=Run cancelled::' "$WORK/cancelled/stdout" || true)
[[ "$errors" == 1 && "$cancel_errors" == 1 ]] \
    || fail "(c) expected exactly one ::error line, titled Run cancelled; got $errors ::error lines, $cancel_errors titled so"
if grep -q 'Traceback (most recent call last)' "$WORK/cancelled/stdout" "$WORK/cancelled/stderr"; then
    fail "(c) a Python traceback reached the log"
fi
assert_no_secret cancelled
"$VENV_PY" - "$before" "$(emulator_requests)" <<'EOF' || fail "(c) expected one halt POST and nothing sent after it"
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
new = after[len(before):]
halts = [i for i, q in enumerate(new) if q["method"] == "POST" and q["path"].endswith("/haltpackagerollout")]
print(f"container-test: (c) the emulator saw {len(new)} requests: " + ", ".join(f"{q['method']} {q['path']}" for q in new))
sys.exit(0 if len(halts) == 1 and halts[0] == len(new) - 1 else 1)
EOF
say "(c) ok: exit 1, result=unknown, one ::error title=Run cancelled::, nothing sent after the halt"

# A record for `make bench` (docs/benchmarks.md), next to the repository's other local state.
mkdir -p "$ROOT/.container"
"$VENV_PY" - "$ROOT/.container/record.json" "$SIZE" "$BUILD_TIME" "$cached" "$BASE" <<'PY'
import json, subprocess, sys, time
path, size, build, cached, base = sys.argv[1:]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
record = {"image_size": size, "build_seconds": float(build), "cached_steps": int(cached),
          "base_image": base, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
PY
say "summary: image $SIZE, build $BUILD_TIME s; halt, bad-input and cancelled runs behaved as GitHub would show them"
