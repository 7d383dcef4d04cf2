"""The proxy's own upstream connections name themselves (CLIENT SETNAME),
so CLIENT LIST on the upstream tells them from client sessions: the control
link, the replica link (named before its PSYNC, so it is named as a
replica) and the checkpoint link."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import durable  # noqa: E402,F401

import pytest  # noqa: E402

pytestmark = pytest.mark.proxy_only


def test_control_and_replica_links_are_named_in_client_list(durable):
    with durable.direct() as d:
        def names():
            return {c.get("name"): c for c in harness.client_list(d)}
        harness.wait_until(lambda: {"durable-proxy-control", "durable-proxy-replica"} <= set(names()), 10,
                           "the proxy's links named in CLIENT LIST", state=lambda: sorted(names()))
        listing = names()
        assert "S" in listing["durable-proxy-replica"]["flags"], listing["durable-proxy-replica"]
        assert listing["durable-proxy-replica"]["cmd"] in ("psync", "replconf"), listing["durable-proxy-replica"]
        assert "S" not in listing["durable-proxy-control"]["flags"]
        # A client session is not named by the proxy.
        with durable.conn() as c:
            assert c.call("CLIENT", "GETNAME") is None
