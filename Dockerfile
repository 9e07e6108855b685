# halt-rollout: the container that GitHub runs for this Docker container action.
#
# The base is the official Python image (3.11, matching the wheels pinned in
# requirements.txt), by tag and digest: the digest fixes every byte, and the tag
# says which line Dependabot's docker updater follows. It rewrites both on a
# `FROM image:tag@sha256:...` line (and cannot see through an `ARG` in FROM,
# which is why there is none). Builds without registry access replace this base
# with `buildah build --from IMAGE` (scripts/build-stand-in-base.sh); nothing
# below depends on which one is used.
FROM python:3.11-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba

# No .pyc written at run time (the image is read-only in spirit and the run is
# short); unbuffered output so every log line and ::error:: annotation reaches
# the runner as it is printed, in order, even if the process is killed.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Dependencies first, in their own layer: it is rebuilt only when the lock
# changes. The lock is complete and hashed, installed as written and checked;
# runtime packages only, no test tools. actions-toolkit's wheel also installs a
# top-level `tests` package of its own (its RECORD lists tests/*.py): it is not
# part of the action and is removed.
COPY requirements.txt /action/requirements.txt
RUN /usr/local/bin/python -m pip install \
        --require-hashes --no-cache-dir \
        --disable-pip-version-check --no-input --root-user-action=ignore \
        -r /action/requirements.txt \
    && /usr/local/bin/python -m pip check --disable-pip-version-check \
    && /usr/local/bin/python -c 'import importlib.metadata as m, shutil; \
shutil.rmtree(m.distribution("actions-toolkit").locate_file("tests"), ignore_errors=True)'

# The action itself: only what runs.
COPY halt_rollout/ /action/halt_rollout/
COPY entrypoint.py /action/entrypoint.py
RUN /usr/local/bin/python -m compileall -q /action/halt_rollout /action/entrypoint.py

# Static OCI labels (last, so editing them rebuilds nothing); the release
# workflow adds source, version and revision.
LABEL org.opencontainers.image.title="halt-rollout" \
      org.opencontainers.image.description="GitHub Action: halt the gradual package rollout of a Microsoft Store submission (emergency stop)" \
      org.opencontainers.image.licenses="MIT"

# No USER: GitHub runs Docker container actions as the default user (root)
# and bind-mounts the workspace, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY from
# the runner; GitHub's docs say not to set USER, as the action could then not
# access GITHUB_WORKSPACE (nor write the output and summary files). Absolute paths only: the runner
# overrides PATH, HOME and the working directory.
# env execs Python with SIGINT and SIGTERM blocked: a cancel that comes while the
# interpreter starts waits, pending, until entrypoint.py handles it (and unblocks them),
# instead of a KeyboardInterrupt traceback or a silent kill with no outputs.
ENTRYPOINT ["/usr/bin/env", "--block-signal=INT", "--block-signal=TERM", \
            "/usr/local/bin/python", "/action/entrypoint.py"]
