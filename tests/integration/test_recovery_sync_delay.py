"""repl-diskless-sync-delay (5 s by default): a diskless primary waits that
long before it starts the RDB of a full sync, and a replica cannot ask for
less, so the proxy's first start and every checkpoint pay it.  The proxy
names the setting in its log; deploy/valkey.conf sets it to 0."""
import pytest

import harness
from checkpoint_util import proxy_config

pytestmark = pytest.mark.proxy_only

WARNING = "repl-diskless-sync-delay 1: the proxy's first full sync and every checkpoint wait 1 s"


def proxy_log(proxy):
    with open(proxy.log_path) as f:
        return f.read()


@pytest.mark.parametrize("delay", ["1", "0"])
def test_a_sync_delay_is_named_in_the_log(tmp_path, delay):
    upstream = harness.Server(tmp_path, ["--repl-diskless-sync-delay", delay], name="upstream")
    proxy = None
    try:
        proxy = harness.Proxy(tmp_path, upstream.port, "always", config_text=proxy_config(), wait_ready=False)
        proxy.wait_ready(30)
        if delay == "1":
            harness.wait_until(lambda: WARNING in proxy_log(proxy), 10, "the sync delay warning")
        else:
            # The warning comes before the first full sync finishes, so by ready it would be there.
            assert "repl-diskless-sync-delay" not in proxy_log(proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.stop()


def test_deploy_config_asks_for_no_delay():
    import os
    path = os.path.join(harness.REPO, "deploy", "valkey.conf")
    with open(path) as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert ["repl-diskless-sync-delay", "0"] in lines
    assert ["repl-diskless-sync", "yes"] in lines
