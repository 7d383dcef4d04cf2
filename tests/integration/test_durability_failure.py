"""When the log cannot make a write durable: fsync failure, and the memory
bounds that apply while fsync is stuck (DESIGN.md §4, §5).
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import fresh_durable, held, timed_read  # noqa: E402,F401

import pytest  # noqa: E402

pytestmark = pytest.mark.proxy_only


def test_fsync_failure_answers_errors_and_turns_unready(fresh_durable):
    d = fresh_durable()
    with d.conn() as c, d.conn() as reader:
        assert c.call("SET", "a", "1") == "OK"
        assert d.proxy.readyz() == 200
        d.ctl.fail()
        reply = c.call("SET", "b", "2")
        assert isinstance(reply, harness.Error), "SET answered %r after the log's fsync failed" % reply
        assert "durable" in reply and "log" in reply, reply
        status, body = d.proxy.admin_get("/readyz")
        assert status == 503, (status, body)
        assert "log" in body, body
        info = d.info()
        assert info["log_failed"] == "1" and info["ready"] == "0", info
        # Later writes are refused, never acknowledged.
        for i in range(3):
            r = c.call("SET", "later%d" % i, "x")
            assert isinstance(r, harness.Error), r
        r = c.call("INCR", "n")
        assert isinstance(r, harness.Error), r
        # A read of a durable key still answers.
        assert reader.call("GET", "a") == b"1"
        # Clearing the fault does not make the failed log trustworthy again.
        d.ctl.clear()
        r = c.call("SET", "after", "y")
        assert isinstance(r, harness.Error), r
        assert d.proxy.readyz() == 503


def test_bounded_memory_while_fsync_is_blocked(fresh_durable):
    """A client pipelining ~40 MB of writes while fsync is blocked: the
    proxy stops reading it (the sender stalls), its memory stays bounded,
    and once fsync resumes every write is answered +OK, executed and
    logged: nothing is dropped."""
    d = fresh_durable(config_text="limits:\n  client_buffer: 256kb\n  total_held: 1mb\n"
                                  "durability:\n  max_unsynced: 1mb\n")
    n, value = 40000, "v" * 1000
    with d.conn() as c:
        assert c.call("SET", "warm", "1") == "OK"
    d.settle()
    rss0 = d.proxy.rss_bytes()
    d.ctl.block()
    payload = b"".join(harness.encode("SET", "big%d" % i, value) for i in range(n))
    sent = [0]
    conn = d.conn(timeout=30)

    def sender():
        view = memoryview(payload)
        while sent[0] < len(view):
            try:
                sent[0] += conn.sock.send(view[sent[0]:sent[0] + 65536])
            except OSError:
                return
    t = threading.Thread(target=sender)
    t.start()
    try:  # (nothing may read `conn` here: that would change its socket timeout)
        # Positive event first: the sender stalls (no progress for 0.5 s) ...
        harness.wait_stalled(lambda: sent[0], 0.5, 30, "the sender to stall (the proxy stops reading)")
        assert sent[0] < len(payload), "the proxy read all %d bytes while fsync was blocked" % len(payload)
        stalled_at = sent[0]
        time.sleep(0.5)  # ... then the negative proof: it stays stalled
        assert sent[0] - stalled_at < 1 << 20, "the proxy kept reading while fsync was blocked"
        rss = d.proxy.rss_bytes()
        info = d.info()
        with d.direct() as up:
            executed = up.call("DBSIZE") - 1
        if not harness.SANITIZED:
            assert rss - rss0 < 24 << 20, "proxy RSS grew by %d MB" % ((rss - rss0) >> 20)
        assert int(info["unsynced_bytes"]) < 4 << 20, info
        assert executed < n // 2, "%d of %d writes executed with fsync blocked" % (executed, n)
    finally:
        d.ctl.unblock()
        t.join(60)
    assert sent[0] == len(payload)
    replies = [conn.read_frame(30)[1] for _ in range(n)]
    conn.close()
    bad = [r for r in replies if r != "OK"]
    assert not bad, "%d replies not OK, e.g. %r" % (len(bad), bad[:3])
    with d.direct() as up:
        assert up.call("DBSIZE") == n + 1
    sets = sum(1 for cmd in d.log_commands() if cmd[0] == b"SET" and cmd[1].startswith(b"big"))
    assert sets == n


def test_a_write_in_flight_when_the_log_fails_gets_its_error_when_its_reply_comes(fresh_durable):
    """SET b is in Valkey (held there by CLIENT PAUSE WRITE) when the log's
    fsync fails: its reply reaches the gate after the failure failed every
    waiting batch, and the durable offset will never cover it.  It must be
    answered with the log's failure when its probe answers, not wait for
    durability.hold_timeout (60 s here: longer than the test waits)."""
    d = fresh_durable(config_text="durability:\n  hold_timeout: 60s\n")
    with d.conn() as a, d.conn(timeout=harness.scaled(15)) as b, d.direct() as up:
        assert a.call("SET", "a", "1") == "OK"
        d.settle()
        d.ctl.block()
        a.send_cmd("SET", "a", "2")
        harness.wait_until(lambda: up.call("GET", "a") == b"2", 5, "SET a executed on the upstream")
        assert up.call("CLIENT", "PAUSE", "60000", "WRITE") == "OK"
        try:
            b.send_cmd("SET", "b", "1")
            harness.wait_blocked(up, "set")
            d.ctl.fail()
            d.ctl.unblock()  # the blocked fdatasync returns EIO: the log fails
            _, ra = timed_read(a, timeout=harness.scaled(15))
            assert isinstance(ra, harness.Error) and "log" in ra, ra
            harness.wait_until(lambda: d.info()["log_failed"] == "1", 10, "the log to have failed")
        finally:
            assert up.call("CLIENT", "UNPAUSE") == "OK"
        _, rb = timed_read(b, timeout=harness.scaled(15))
        assert isinstance(rb, harness.Error), "SET b answered %r after the log failed" % rb
        assert "durable log failed" in rb, rb
        assert up.call("GET", "b") == b"1"  # it ran: the error says it is not durable


def test_hold_timeout_answers_an_error_naming_why(fresh_durable):
    d = fresh_durable(config_text="durability:\n  hold_timeout: 1500ms\n")
    with d.conn() as c, d.conn() as reader:
        assert c.call("SET", "t", "1") == "OK"
        d.settle()
        d.ctl.block()
        t0 = time.monotonic()
        c.send_cmd("SET", "t", "2")
        # The GET runs after the SET (observed: on other connections, shared
        # ones too, the server may run it first and then rightly answer the
        # durable 1).
        with d.direct() as dc:
            harness.wait_until(lambda: dc.call("GET", "t") == b"2", 5, "SET t 2 executed")
        reader.send_cmd("GET", "t")
        assert held(c, 0.3), "SET answered while fsync was blocked"
        waited, reply = timed_read(c, timeout=5)
        waited += 0.3
        assert isinstance(reply, harness.Error), "SET answered %r with fsync blocked" % reply
        assert "durable" in reply and "in time" in reply, reply
        assert 1.4 <= time.monotonic() - t0 < 6, time.monotonic() - t0
        # The dirty read is withheld too: an error, never the new value.
        _, value = timed_read(reader, timeout=5)
        assert isinstance(value, harness.Error), "GET revealed %r before fsync" % value
        status, body = d.proxy.admin_get("/readyz")
        assert status == 503, (status, body)
        d.ctl.unblock()
        # Once fsync works again the proxy serves as before.
        assert c.call("SET", "t", "3") == "OK"
        assert reader.call("GET", "t") == b"3"
        harness.wait_until(lambda: d.proxy.readyz() == 200, 5, "ready again")


@pytest.mark.parametrize("limits", ["per_client", "total"])
def test_held_reply_bytes_are_bounded(fresh_durable, limits):
    """fsync blocked, a 100 KB value pending, clients pipelining 60 GETs of
    it each: the proxy stops reading once held replies pass client_buffer
    (per client) or total_held (all clients), holds no more than that plus
    one read's worth, and delivers every reply intact once fsync resumes."""
    config = ("limits:\n  client_buffer: 256kb\n  total_held: 64mb\n" if limits == "per_client" else
              "limits:\n  client_buffer: 64mb\n  total_held: 384kb\n")
    bound = 256 << 10 if limits == "per_client" else 384 << 10
    clients = 1 if limits == "per_client" else 3
    d = fresh_durable(config_text=config)
    value = "x" * (100 << 10)
    with d.conn() as w:
        assert w.call("SET", "big", "0") == "OK"
        d.settle()
        d.ctl.block()
        with d.direct() as direct:
            sets = harness.command_calls(direct, "set")
            w.send_cmd("SET", "big", value)
            # The GETs must follow the SET: see the upstream executed it.
            harness.wait_executed(direct, "set", sets + 1)
        conns = [d.conn(timeout=20) for _ in range(clients)]

        # (admin /status: past total_held no client connection is read)
        def status():
            return json.loads(d.proxy.admin_get("/status")[1])

        try:
            for c in conns:
                c.send(harness.encode("GET", "big") * 60)
            # Positive event first: the held replies reach the limit ...
            harness.wait_until(lambda: int(status()["held_bytes"]) >= bound, 10,
                               "held replies to reach the %d-byte limit" % bound,
                               state=lambda: status()["held_bytes"])
            # ... then the negative proof: they do not grow past it.
            slack = clients * (2 * len(value) + (64 << 10))
            if harness.SHARING == "auto":
                # A shared client's first replies (at most 8, then it moves to
                # its own connection) are read whatever the bounds (README).
                slack += clients * 8 * len(value)
            limit = bound * (clients if limits == "per_client" else 1) + slack
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                info = status()
                assert int(info["held_bytes"]) <= limit, info
                time.sleep(0.05)
            d.ctl.unblock()
            assert w.read_frame(10)[1] == "OK"
            for c in conns:
                for _ in range(60):
                    assert c.read_frame(20)[1] == value.encode()
        finally:
            for c in conns:
                c.close()
