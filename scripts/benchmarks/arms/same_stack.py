"""The same-stack arm: the action's common path on the action's own stack, and no more.

azure-identity's ClientSecretCredential signs in (its OpenID configuration and token
requests, as the action's sign-in makes them), one `requests` POST halts the given
submission, and the result goes to GITHUB_OUTPUT. It reads the inputs from the
environment GitHub's runner gives the action (`INPUT_APP-ID` and so on).
"""

import os
import sys

import requests
from azure.identity import ClientSecretCredential

env = os.environ
credential = ClientSecretCredential(
    env["INPUT_TENANT-ID"],
    env["INPUT_CLIENT-ID"],
    env["INPUT_CLIENT-SECRET"],
    authority=env["INPUT_AUTHORITY-HOST"],
    disable_instance_discovery=True,
)
token = credential.get_token("https://manage.devcenter.microsoft.com/.default").token
halt = requests.post(
    f"{env['INPUT_STORE-API-URL']}/v1.0/my/applications/{env['INPUT_APP-ID']}"
    f"/submissions/{env['INPUT_SUBMISSION-ID']}/haltpackagerollout",
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    timeout=30,
)
halt.raise_for_status()
halted = halt.json()["packageRolloutStatus"] == "PackageRolloutStopped"
with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
    output.write(f"result={'halted' if halted else 'failed'}\n")
sys.exit(0 if halted else 1)
