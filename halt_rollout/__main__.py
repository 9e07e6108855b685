"""`python -m halt_rollout`: the command line."""

import sys

from .cancel import CANCELLATION

# SIGINT (Ctrl-C) and SIGTERM are handled from the first moment, before the slow imports.
CANCELLATION.install()

from .cli import console  # noqa: E402

sys.exit(console())
