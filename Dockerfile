# halt-rollout: the container that GitHub runs for this Docker container action.
#
# BASE_IMAGE is the official Python image, by tag (Python 3.11, matching the
# wheels pinned in requirements.txt). Tests on machines without registry access
# pass a locally built stand-in with --build-arg BASE_IMAGE=... (see
# scripts/build-stand-in-base.sh); nothing below depends on which one is used.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# No .pyc written at run time (the image is read-only in spirit and the run is
# short); unbuffered output so every log line and ::error:: annotation reaches
# the runner as it is printed, in order, even if the process is killed.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Dependencies first, in their own layer: it is rebuilt only when the lock
# changes. --no-deps over a complete, hashed lock (see requirements-overrides.txt);
# runtime packages only, no test tools.
COPY requirements.txt /action/requirements.txt
RUN /usr/local/bin/python -m pip install \
        --no-deps --require-hashes --no-cache-dir \
        --disable-pip-version-check --no-input --root-user-action=ignore \
        -r /action/requirements.txt

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
ENTRYPOINT ["/usr/local/bin/python", "/action/entrypoint.py"]
