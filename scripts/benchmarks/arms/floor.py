"""The floor arm: what any Python implementation must do at the least, in one process.

The token POST and the halt POST over one `requests` connection, nothing else.
Run by the time-to-halt benchmark with BENCH_* variables naming the emulator.
"""

import os
import sys

import requests

env = os.environ
with requests.Session() as session:
    token = session.post(
        f"{env['BENCH_URL']}/{env['BENCH_TENANT']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["BENCH_CLIENT_ID"],
            "client_secret": env["BENCH_SECRET"],
            "scope": "https://manage.devcenter.microsoft.com/.default",
        },
        timeout=30,
    )
    token.raise_for_status()
    halt = session.post(
        env["BENCH_URL"] + env["BENCH_HALT_PATH"],
        headers={
            "Authorization": "Bearer " + token.json()["access_token"],
            "Content-Type": "application/json",  # the Store refuses a POST without it
        },
        timeout=30,
    )
    halt.raise_for_status()
sys.exit(0 if halt.json()["packageRolloutStatus"] == "PackageRolloutStopped" else 1)
