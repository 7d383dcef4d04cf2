"""Memory per connection is bounded: a client that does not read, or an
upstream that does not read, makes the proxy stop reading from the other
side instead of buffering; and a 100 MB value still passes through."""
import hashlib
import signal
import threading
import time

import pytest

from harness import DIRECT, RespConn, client_list, command_calls, encode, wait_executed, wait_stalled

MB = 1 << 20
# The proxy's default per-client buffer is 64 MB (limits.client_buffer_bytes);
# allow that, kernel socket buffers and the process's own baseline.
RSS_BOUND = 200 * MB


def test_hundred_megabyte_value_passes_through(target):
    value = (b"0123456789abcdef" * (MB // 16)) * 100
    with target.conn(timeout=60) as c:
        c.send(encode("SET", "huge", value))
        assert c.read_frame(60) == (b"+OK\r\n", "OK")
        c.send(encode("GET", "huge") + encode("STRLEN", "huge"))
        header = c.read_line(60)
        assert header == b"$%d" % len(value)
        got = c.read_raw(len(value) + 2, 60)
        assert hashlib.sha256(got[:-2]).digest() == hashlib.sha256(value).digest()
        assert got[-2:] == b"\r\n"
        assert c.read_frame() == (b":104857600\r\n", 104857600)
        c.call("DEL", "huge")


@pytest.mark.proxy_only
def test_client_that_does_not_read_makes_the_proxy_stop_reading_upstream(target):
    value = b"v" * MB
    n = 300  # 300 MB of replies, far above the proxy's per-client bound
    with target.conn(timeout=30) as setup:
        setup.call("SET", "bp-value", value)
    with target.conn(timeout=30) as lazy, target.direct() as d:
        gets = command_calls(d, "get")
        lazy.send(b"".join(encode("GET", "bp-value") for _ in range(n)))
        # The upstream executed every GET: all 300 MB of replies exist, and
        # what the proxy does not read stays in the upstream's output buffer.
        wait_executed(d, "get", gets + n, timeout=60)
        wait_stalled(lambda: sum(int(c.get("omem", 0)) for c in client_list(d)), 0.5, 30,
                     "the upstream's output buffers to stop draining")
        # An unbounded proxy would now hold most of the 300 MB.
        rss = target.proxy.rss_bytes()
        assert rss < RSS_BOUND, "proxy RSS %d MB with a client not reading" % (rss // MB)
        with target.conn() as other:  # others are served meanwhile
            assert other.call("PING") == "PONG"
        for i in range(n):
            raw, got = lazy.read_frame(30)
            assert got == value, "reply %d of %d is wrong" % (i, n)
        assert lazy.nothing_pending()


def test_upstream_that_does_not_read_makes_the_client_writes_stall(fresh_target):
    t = fresh_target()
    command = encode("SET", "bp-in", b"w" * (4 * MB))
    total = 100  # 400 MB of requests if nothing pushed back
    sent = [0]
    errors = []

    def writer(conn):
        try:
            for _ in range(total):
                conn.send(command)
                sent[0] += 1
        except OSError as e:
            errors.append(e)

    with t.conn(timeout=60) as c:
        t.upstream.signal(signal.SIGSTOP)
        try:
            th = threading.Thread(target=writer, args=(c,), daemon=True)
            th.start()
            wait_stalled(lambda: sent[0], 0.5, 30, "the client's writes to stall")
            stalled_at = sent[0]
            time.sleep(0.5)  # negative proof: they stay stalled
            assert sent[0] == stalled_at < total, "writes never stalled (%d sent)" % sent[0]
            assert stalled_at * len(command) < RSS_BOUND
            if not DIRECT:
                rss = t.proxy.rss_bytes()
                assert rss < RSS_BOUND, "proxy RSS %d MB while upstream stopped" % (rss // MB)
        finally:
            t.upstream.signal(signal.SIGCONT)
        th.join(60)
        assert not errors and sent[0] == total
        for _ in range(total):
            assert c.read_frame(30) == (b"+OK\r\n", "OK")
        assert c.call("STRLEN", "bp-in") == 4 * MB
