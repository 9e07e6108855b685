"""An answer no waiting can change is named as such and never retried as an outage (rules 6
and 7), and every network failure is said in words a person acts on (rule 9's spirit:
never an internal class name).

A proxy that answers the tunnel with 407 wants credentials: the run fails at once naming
the proxy, its variable and its credentials as the thing to check. A proxy or Store that
cannot be reached is named by host (and the proxy by URL without its password), not by
urllib3's objects (`_WatchedHTTPSPool(host=…)`). Entra's redirect or page: see
test_signin_explained.py. Doubled Retry-After headers are honoured: test_retry.py.
"""

from __future__ import annotations

import re
import socket

from store_emulator.step_results import ActionRun

from .conftest import visible_text
from .connect_proxy import ConnectProxy
from .world import PROXY_VARIABLES, World, forward_everything, proxied

# What urllib3 and http.client call their objects; none of it may reach a person.
INTERNAL = re.compile(r"_Watched|Pool\(|Connection\(|Error\(|object at 0x|Max retries")


def proxy_refusal(run: ActionRun, proxy: ConnectProxy) -> str:
    """The run's one error, which names the proxy that asked for credentials."""
    assert run.exit_code == 1
    [error] = run.errors
    assert "title=Proxy refused (HTTP 407)::" in error, error
    assert f"127.0.0.1:{proxy.port}" in error, error
    assert "HTTPS_PROXY" in error, error
    return error


def test_a_proxy_asking_for_credentials_is_named_and_not_retried(world: World) -> None:
    """Rule 7 retries outages; a 407 is the proxy's answer. The Store is reached through
    the proxy (Entra directly, by NO_PROXY): the halt fails at once, the error names the
    proxy, its variable and its credentials, and says nothing reached the Store."""
    store = world.hostile(forward_everything)
    with ConnectProxy("auth") as proxy:
        url = f"http://alice:wrong@127.0.0.1:{proxy.port}"
        run = world.run(
            # The Store by another name than Entra's 127.0.0.1, which NO_PROXY exempts.
            {"timeout-seconds": "30", "store-api-url": store.url.replace("127.0.0.1", "localhost")},
            env=proxied(url, NO_PROXY="127.0.0.1"),
        )
        tunnels = proxy.targets

    error = proxy_refusal(run, proxy)
    assert "password" in error, error
    assert "Nothing reached the Store" in error, error
    assert "could not be reached" not in error, error
    assert "timeout-seconds" not in error, error
    assert "wrong" not in visible_text(run)
    assert len(tunnels) == 1, f"a 407 was asked again: {tunnels}"
    assert store.requests == []


def test_a_proxy_asking_for_credentials_at_sign_in_is_named_too(world: World) -> None:
    with ConnectProxy("auth") as proxy:
        run = world.run({"timeout-seconds": "30"}, env=proxied(proxy.url))
        tunnels = proxy.targets
    proxy_refusal(run, proxy)
    assert len(tunnels) == 1, f"a 407 was asked again: {tunnels}"
    assert world.emulator.requests == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_proxy_that_cannot_be_reached_is_named_without_internal_names(world: World) -> None:
    port = closed_port()
    run = world.run({"timeout-seconds": "3"}, env=proxied(f"http://127.0.0.1:{port}"))
    assert run.exit_code == 1
    [error] = run.errors
    assert f"the proxy http://127.0.0.1:{port} (HTTPS_PROXY) could not be reached" in error, error
    assert "connection was refused" in error, error
    assert not INTERNAL.search(visible_text(run)), visible_text(run)


def test_a_store_that_cannot_be_reached_is_named_without_internal_names(world: World) -> None:
    port = closed_port()
    run = world.run(
        {"timeout-seconds": "3", "store-api-url": f"https://127.0.0.1:{port}"},
        env=dict.fromkeys(PROXY_VARIABLES),
    )
    assert run.exit_code == 1
    [error] = run.errors
    assert f"127.0.0.1:{port}" in error, error
    assert "connection was refused" in error, error
    assert not INTERNAL.search(visible_text(run)), visible_text(run)
