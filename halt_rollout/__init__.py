"""halt-rollout: the emergency stop for a Microsoft Store package rollout."""

import time

__version__ = "1.0.0"

# When halt-rollout's code began to load, on the monotonic clock: timeout-seconds counts
# from here, so that importing azure-identity on a loaded runner is part of the deadline.
STARTED = time.monotonic()
