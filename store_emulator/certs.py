"""A throwaway CA and a server certificate for the emulator's HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

import trustme

_ALWAYS = ("127.0.0.1", "localhost", "::1")


def server_context(ca_dir: Path, hosts: Iterable[str]) -> tuple[ssl.SSLContext, str]:
    """Make a CA, write its PEM into ca_dir, and a server context with a certificate
    for loopback plus `hosts` (names or IP addresses). Returns (context, CA path)."""
    names = list(dict.fromkeys([*_ALWAYS, *(h for h in hosts if h)]))
    ca = trustme.CA(organization_name="halt-rollout store emulator")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert(*names).configure_cert(context)
    ca_path = ca_dir / "emulator-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return context, str(ca_path)
