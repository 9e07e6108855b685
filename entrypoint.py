"""The container's entry point: run the action, exit with its code."""

from halt_rollout import STARTED
from halt_rollout.cancel import CANCELLATION

# SIGINT and SIGTERM are handled from the first moment, before the slow imports below.
CANCELLATION.install()

from halt_rollout.main import main  # noqa: E402
from halt_rollout.process_exit import exit_now  # noqa: E402

if __name__ == "__main__":
    # timeout-seconds counts from when halt-rollout began to load, imports included.
    exit_now(main(started=STARTED))
