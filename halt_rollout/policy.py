"""The retry policy's constants: what is retried, how long to wait, how long to persist."""

from __future__ import annotations

# 429 and the gateway's outages; anything else is final.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 20.0
# Waits that follow Retry-After are stretched a little so that several targets
# throttled together do not all come back in the same instant.
RETRY_AFTER_JITTER_SECONDS = 0.25
# The Store's 503 "Account service is experiencing issue" means the Entra app was
# never added to the Partner Center account: waiting does not clear it.
ACCOUNT_SERVICE_PATIENCE_SECONDS = 30.0
# Before a halt is sent, this much of the deadline is kept back, so that a halt
# whose answer is lost can still be confirmed by one read before time is up.
CONFIRM_RESERVE_SECONDS = 3.0
CONFIRM_RESERVE_SHARE = 0.2  # at most this share of timeout-seconds
# While a halt is confirmed (rule 7a), the rollout is read again after these waits, the
# last repeated until the deadline: quick at first (most halts apply at once), then few
# enough requests to stay inside the tenant's rate limit beside other targets.
CONFIRM_WAITS_SECONDS = (1.0, 2.0, 4.0, 8.0)
# A 409 to this run's first halt while the rollout reads in progress may be another
# responder's halt under way (the Store applies a halt in seconds, not at once): the
# rollout is watched this long (or to the deadline) before the refusal stands. Bounded,
# so that a real refusal (an app using a feature the API does not support) is said in
# seconds, as rule 6 asks, not at the deadline; the old three re-reads over 6 s were
# too few for a halt still being applied.
CONFLICT_WATCH_SECONDS = 20.0
