"""A Microsoft Store emulator for tests, demos and benchmarks (never shipped in the image).

One HTTPS server on loopback plays three services:

* Microsoft Entra ID as MSAL uses it: ``GET /{tenant}/v2.0/.well-known/openid-configuration``
  and ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a secret, or with a
  GitHub OIDC token as client assertion), with Entra's error bodies.
* GitHub Actions' OIDC token endpoint: ``GET /github-oidc/token?audience=...``.
* The Store analytics API under ``/v1.0/my/analytics/``: ``failurehits`` and ``usagedaily``
  with the documented shapes, paging, lag and errors (``analytics``, switched on
  ``emu.analytics.knobs``), and rollouts scripted for the guard (``guard_script``).
* The Store submission API under ``/v1.0/my/``: apps, flights (``listflights`` with paging),
  submissions with their packages (and a signed ``fileUploadUrl``, whose signature is
  ``emu.upload_signature``), package rollouts and the halt state machine, behind a
  bearer-token check.

The Store behaves as it has been seen to in the field, switchable on ``emu.knobs``
(``knobs.Knobs``): JSON-only POSTs, integer percentages, the account-service 503, foreign
app IDs, slow halts, listflights page caps. Faults (``faults.Fault``) script misbehaviour of
any endpoint, down to the byte: resets, hangs, truncation, delays, trickled and huge or
hostile bodies (``bodies``). The demo's IDs are in ``demo``.

Usage::

    with Emulator() as emu:
        emu.seed_demo()
        emu.add_fault(Fault(method="POST", path=r"/haltpackagerollout$", status=429,
                            headers={"Retry-After": "1"}))
        ...  # point the client at emu.url, trusting emu.ca_path

``python -m store_emulator`` runs it as a process (see ``__main__``). For that use it has a
control API on the same port, under ``/_emulator/``: ``POST faults``, ``DELETE faults``,
``POST apps``, ``POST flights``, ``POST rollout``, ``POST packages``, ``GET rollout``,
``GET knobs``, ``POST knobs``, ``POST seed`` (demo, whole-app, guard), ``GET``/``POST
analytics/knobs``, ``POST analytics/script``, ``GET requests`` and
``POST reset-requests``. The control API takes no token: this is a loopback test tool,
and anyone who can reach it can rewrite its state. Control requests are not recorded and
no fault applies to them.
"""

from .bodies import Stream
from .emulator import Emulator
from .faults import Fault
from .knobs import Knobs
from .records import Headers, Recorded
from .resources import StoreError

__all__ = ["Emulator", "Fault", "Headers", "Knobs", "Recorded", "StoreError", "Stream"]
