"""`python -m halt_rollout`: the command line."""

import sys

from .cli import console

sys.exit(console())
