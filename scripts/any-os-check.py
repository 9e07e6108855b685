"""The command line, installed as a user installs it, against the Store emulator, on any OS.

    python scripts/any-os-check.py [--warm-up-tries N] -- CLI...

CLI is how to start the command, e.g. `pipx run --spec halt-rollout==1.2.3 halt-rollout`
on a Windows or macOS runner, or `.venv/bin/halt-rollout` here. The emulator runs in this
process (Entra ID, GitHub's OIDC endpoint and the Store API on loopback); the command:

  1. a dry run with a client secret (AZURE_CLIENT_SECRET): result dry-run, nothing halted;
  2. the halt, signed in with a GitHub OIDC token as in a workflow with
     `id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN): result halted;
  3. the same halt again: already-halted, nothing sent.

A `--version` run comes first, with this machine's own environment, so that pipx installs
the package (from PyPI, retried while a new release propagates) before the checks point
REQUESTS_CA_BUNDLE at the emulator's CA. Exits 1 with the reason when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store_emulator import Emulator
from store_emulator.demo import APP_ID

# A runner's, an Azure login's or a CA choice of this machine: never the check's.
DROPPED = ("AZURE_", "ACTIONS_ID_TOKEN_", "GITHUB_EVENT_", "INPUT_")
DROPPED_NAMES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


class CheckFailed(Exception):
    pass


def warm_up(cli: Sequence[str], tries: int) -> str:
    for attempt in range(1, tries + 1):
        done = subprocess.run(
            [*cli, "--version"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode == 0:
            return done.stdout.strip()
        print(f"any-os-check: --version failed (try {attempt} of {tries}):\n{done.stderr}")
        if attempt < tries:
            time.sleep(20)
    raise CheckFailed("the command would not start")


def ca_bundle(emulator_ca: str, folder: Path) -> str:
    """The emulator's CA, plus certifi's roots when certifi is here (pipx may reach PyPI)."""
    pem = Path(emulator_ca).read_text(encoding="ascii")
    try:
        import certifi  # noqa: PLC0415 (only for this)

        pem = Path(certifi.where()).read_text(encoding="ascii") + "\n" + pem
    except ImportError:
        pass
    path = folder / "ca-bundle.pem"
    path.write_text(pem, encoding="ascii")
    return str(path)


def run(
    cli: Sequence[str], emu: Emulator, bundle: str, extra: Mapping[str, str], *flags: str
) -> dict[str, Any]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED) and key not in DROPPED_NAMES
    }
    env |= {"REQUESTS_CA_BUNDLE": bundle, **extra}
    args = [
        *cli,
        "--app-id", APP_ID,
        "--tenant-id", emu.tenant_id,
        "--client-id", emu.client_id,
        "--store-api-url", emu.url,
        "--authority-host", emu.url,
        "--timeout", "60",
        "--json",
        *flags,
    ]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    print(f"any-os-check: exit {done.returncode}; its log:")
    for line in done.stderr.splitlines():
        print(f"    | {line}")
    try:
        outputs: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise CheckFailed(f"no JSON on standard output: {done.stdout!r}") from None
    outputs["exit_code"] = done.returncode
    secrets = [emu.client_secret, emu.oidc_request_token, *emu.issued_oidc_tokens]
    if any(secret in done.stdout + done.stderr for secret in secrets):
        raise CheckFailed("a secret reached the output")
    return outputs


def expect(outputs: dict[str, Any], result: str, halts: int, emu: Emulator) -> None:
    seen = (outputs.get("exit_code"), outputs.get("result"), len(emu.halt_requests))
    if seen != (0, result, halts):
        raise CheckFailed(
            f"expected exit 0, result {result} and {halts} halt requests; got exit {seen[0]}, "
            f"result {seen[1]}, {seen[2]} halt requests"
        )
    print(f"any-os-check: ok: {result}")


def check(cli: Sequence[str], tries: int) -> None:
    print(f"any-os-check: {' '.join(cli)} is {warm_up(cli, tries)}, on {sys.platform}")
    with Emulator() as emu, tempfile.TemporaryDirectory() as scratch:
        emu.seed_demo()
        bundle = ca_bundle(emu.ca_path, Path(scratch))
        secret = {"AZURE_CLIENT_SECRET": emu.client_secret}
        oidc = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": emu.oidc_request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": emu.oidc_request_token,
        }
        print("any-os-check: 1. a dry run, client secret")
        expect(run(cli, emu, bundle, secret, "--dry-run"), "dry-run", 0, emu)
        print("any-os-check: 2. the halt, GitHub OIDC sign-in")
        expect(run(cli, emu, bundle, oidc), "halted", 1, emu)
        assertions = [r for r in emu.requests if b"client_assertion=" in (r.body or b"")]
        if not assertions:
            raise CheckFailed("the halt did not sign in with the OIDC token")
        print("any-os-check: 3. the same halt again")
        expect(run(cli, emu, bundle, secret), "already-halted", 1, emu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-up-tries", type=int, default=1)
    parser.add_argument("cli", nargs="+", help="the command, after --")
    args = parser.parse_args(argv)
    try:
        check(args.cli, args.warm_up_tries)
    except CheckFailed as failure:
        print(f"any-os-check: FAILED: {failure}", file=sys.stderr)
        return 1
    print("any-os-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
