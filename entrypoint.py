"""The container's entry point: run the action, exit with its code."""

import sys

from halt_rollout.main import main

if __name__ == "__main__":
    sys.exit(main())
