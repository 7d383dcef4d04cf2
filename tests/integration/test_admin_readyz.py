"""/readyz follows the upstream: 200 while the proxy serves, 503 with the
reason when the upstream goes away, 200 again when it is back; /healthz
stays 200 throughout and the ready/upstream gauges follow /readyz."""
import pytest

import harness
from admin_util import metrics, request, sample

pytestmark = pytest.mark.proxy_only


def readyz(proxy):
    status, _, body = request(proxy.admin_port, "GET", "/readyz")
    return status, body.strip()


def wait_status(proxy, want, timeout, what):
    harness.wait_until(lambda: readyz(proxy)[0] == want, timeout,
                       "/readyz %d (%s); last answer %r" % (want, what, readyz(proxy)), interval=0.05)


def check_flip(upstream, proxy, restart_wait):
    assert readyz(proxy) == (200, "ready")
    m = metrics(proxy.admin_port)
    assert sample(m, "durable_proxy_ready") == 1 and sample(m, "durable_proxy_upstream_connected") == 1
    port = upstream.port
    upstream.stop()
    wait_status(proxy, 503, 10, "upstream stopped")
    status, body = readyz(proxy)
    assert body.startswith("not ready: ")
    assert "127.0.0.1:%d" % port in body  # names the upstream
    assert request(proxy.admin_port, "GET", "/healthz")[0] == 200
    m = metrics(proxy.admin_port)
    assert sample(m, "durable_proxy_ready") == 0 and sample(m, "durable_proxy_upstream_connected") == 0
    assert sample(m, "durable_proxy_upstream_reconnects_total") >= 1
    assert sample(m, "durable_proxy_errors_total", cause="upstream_io") >= 1
    # Clients get an error at once (LOADING, or the upstream is
    # unreachable), they are not left hanging.
    with harness.RespConn(proxy.addr, timeout=3) as c:
        reply = c.call("GET", "k")
        assert isinstance(reply, harness.Error), reply
        assert reply.startswith("LOADING") or "unreachable" in reply, reply
    upstream.start(port=port)
    wait_status(proxy, 200, restart_wait, "upstream back on %d" % port)
    m = metrics(proxy.admin_port)
    assert sample(m, "durable_proxy_ready") == 1 and sample(m, "durable_proxy_upstream_connected") == 1


def test_readyz_flips_with_the_upstream_durability_off(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = harness.Proxy(tmp_path, upstream.port, "off")
    try:
        check_flip(upstream, proxy, restart_wait=15)
        with harness.RespConn(proxy.addr) as c:
            assert c.call("SET", "after", "1") == "OK"
    finally:
        proxy.stop()
        upstream.stop()


def test_readyz_flips_with_the_upstream_durability_always(tmp_path):
    """With durability always the upstream comes back empty (persistence
    off): the proxy restores it from its log before it is ready again."""
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = harness.Proxy(tmp_path, upstream.port, "always")
    try:
        with harness.RespConn(proxy.addr) as c:
            assert c.call("SET", "before", "kept") == "OK"
        m = metrics(proxy.admin_port)
        assert sample(m, "durable_proxy_replica_link_up") == 1
        check_flip(upstream, proxy, restart_wait=30)
        m = metrics(proxy.admin_port)
        assert sample(m, "durable_proxy_replica_link_up") == 1
        with harness.RespConn(proxy.addr) as c:
            assert c.call("GET", "before") == b"kept"
            assert c.call("SET", "after", "1") == "OK"
    finally:
        proxy.stop()
        upstream.stop()
