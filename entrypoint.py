"""The container's entry point: run the action, exit with its code."""

import sys

from halt_rollout import STARTED
from halt_rollout.main import main

if __name__ == "__main__":
    # timeout-seconds counts from when halt-rollout began to load, imports included.
    sys.exit(main(started=STARTED))
