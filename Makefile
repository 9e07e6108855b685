# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` as is.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The locks are complete and hashed: pip installs them as written, dependencies checked.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes

# What `make demo` and `make try` need, no more: the runtime lock, and from the dev lock the
# emulator's one package of its own (trustme) and setuptools for the editable install, with
# their hashes (scripts/lock-subset.py). `make test`, `make lint` and the rest add the dev lock.
DEMO_EXTRAS := trustme setuptools

.PHONY: help venv demo-venv demo try test soak lint container-test release-rehearsal bench bench-render fault-table lock clean

help:
	@echo "make demo            run the action end to end against the local Store emulator"
	@echo "make try             start the emulator; prints the halt-rollout commands to try on it"
	@echo "make demo-venv       .venv/ with the runtime only (and .venv/bin/halt-rollout)"
	@echo "make test            run the whole test suite"
	@echo "make soak            play N=1000 generated fault schedules against the real entrypoint"
	@echo "                     (N=200 in CI); SEED=S replays one schedule in full"
	@echo "make lint            ruff, mypy --strict, import circles, module sizes, schemas,"
	@echo "                     zizmor, hadolint"
	@echo "make container-test  build the image with buildah and run the action in it"
	@echo "make release-rehearsal  the release's work here: sdist and wheel, image as an OCI"
	@echo "                     layout and the release action.yml under dist/, checked and run"
	@echo "make bench           measure time-to-halt and friends; writes docs/benchmarks.md"
	@echo "make bench-render    write docs/benchmarks.md again from the last bench's record"
	@echo "make fault-table     run tests/test_faults.py; writes its table in docs/reliability.md"

venv: $(VENV)/.installed

demo-venv: $(VENV)/.demo-installed

$(VENV)/.demo-installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PYTHON) scripts/lock-subset.py requirements-dev.txt $(DEMO_EXTRAS) >$(VENV)/demo-extras.txt
	$(PIP_INSTALL) -r requirements.txt -r $(VENV)/demo-extras.txt
	# The package itself, for the `halt-rollout` command; nothing downloaded.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	touch $@

$(VENV)/.installed: $(VENV)/.demo-installed
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

demo: demo-venv
	$(BIN)/python scripts/demo.py

try: demo-venv
	$(BIN)/python scripts/try.py

test: venv
	$(BIN)/python -m pytest

# Generated bad days (tests/schedules): N schedules from seed FIRST on, JOBS at a time; or
# one schedule in full with SEED=S, the command every broken schedule prints.
N ?= 1000
FIRST ?= 1
JOBS ?= 8
soak: venv
	@if [ -n "$(SEED)" ]; then \
		$(BIN)/python -m tests.schedules --seed "$(SEED)"; \
	else \
		$(BIN)/python -m tests.schedules --soak "$(N)" --first "$(FIRST)" --jobs "$(JOBS)"; \
	fi

# The house is kept too: no import circles (import-linter's contracts in pyproject.toml),
# no module over 400 lines (scripts/check-module-size.py).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=scripts $(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python scripts/check-module-size.py
	bash scripts/lint-ci-files.sh

container-test: venv
	bash scripts/container-test.sh

# The release's work, here: the sdist and wheel, dist/image (OCI layout), dist/action.yml,
# dist/rehearsal.json.
release-rehearsal: venv
	bash scripts/release-rehearsal.sh

bench: venv
	$(BIN)/python scripts/bench.py

bench-render: venv
	$(BIN)/python scripts/bench.py --render

fault-table: venv
	$(BIN)/python scripts/fault_table.py

# Re-pin after editing requirements*.in (needs network access to PyPI). The same plain
# compile that Dependabot's pip updater runs: no overrides, so its updates stay installable
# (docs/development.md, "Maintaining the lock"); scripts/check-lock.py checks the result in `make lint`.
lock: venv
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf $(VENV) .try .mypy_cache .ruff_cache .pytest_cache .hypothesis .demo .container .bench .soak dist build
