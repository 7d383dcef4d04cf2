"""SIGTERM: the proxy stops accepting at once; a client with no reply due
(subscribed, in MONITOR, blocked in BLPOP 0) is closed at once; a held reply
is delivered, or fails with its reason at shutdown.timeout; then it exits.
Durability always, the log's fsync held back through the shim."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import fresh_durable  # noqa: E402,F401

import pytest  # noqa: E402

pytestmark = pytest.mark.proxy_only


def _idle_clients(d):
    """A subscriber, a MONITOR client and a BLPOP 0 client, each seen in its
    state on the upstream before the test goes on."""
    sub, mon, blk = d.conn(), d.conn(), d.conn()
    with d.direct() as direct:
        sub.send_cmd("SUBSCRIBE", "news")
        assert sub.read_frame()[1] == [b"subscribe", b"news", 1]
        assert mon.call("MONITOR") == "OK"
        blk.send_cmd("BLPOP", "never-filled", "0")
        harness.wait_blocked(direct, "blpop")
        harness.wait_until(lambda: direct.call("PUBSUB", "NUMSUB", "news")[1] == 1, 10,
                           "the subscriber on the upstream")
    return sub, mon, blk


def _held_set(d, writer):
    """SET with the log's fsync blocked: executed upstream, reply held."""
    d.ctl.block()
    with d.direct() as direct:
        sets = harness.command_calls(direct, "set")
        writer.send_cmd("SET", "k", "v")
        harness.wait_executed(direct, "set", sets + 1)
    assert writer.nothing_pending(0.3), "the SET's reply was not held"


def _exit_time(proxy, timeout):
    """Seconds until the proxy process exits (it must, within timeout)."""
    t0 = time.monotonic()
    proxy.proc.wait(harness.scaled(timeout))
    return time.monotonic() - t0


def test_sigterm_closes_clients_with_nothing_due_and_exits_after_the_last_held_reply(fresh_durable):
    d = fresh_durable(config_text="shutdown:\n  timeout: 30s\n")
    writer = d.conn(timeout=30)
    sub, mon, blk = _idle_clients(d)
    try:
        _held_set(d, writer)
        t_term = time.monotonic()
        d.proxy.signal(signal.SIGTERM)
        harness.wait_until(lambda: not harness.port_accepts(d.proxy.port), 5, "the proxy to stop accepting")
        # Nothing is due to these three: they are closed at once, while the
        # held reply still waits.
        for name, c in (("subscriber", sub), ("monitor", mon), ("blpop 0", blk)):
            try:
                c.expect_close(harness.scaled(5))
            except AssertionError as e:
                raise AssertionError("%s client not closed at SIGTERM: %s" % (name, e))
        closed_after = time.monotonic() - t_term
        assert d.proxy.alive(), "the proxy exited with a reply still held"
        d.ctl.unblock()
        t_release = time.monotonic()
        assert writer.read_frame(10)[1] == "OK"  # the held reply was delivered
        exit_s = _exit_time(d.proxy, 25)
        total = time.monotonic() - t_term
        print("\nshutdown: idle clients closed %.3f s after SIGTERM; exit %.3f s after the held "
              "reply was released (%.3f s after SIGTERM; shutdown.timeout 30 s)"
              % (closed_after, time.monotonic() - t_release, total))
        assert d.proxy.proc.returncode == 0, d.proxy.describe()
        assert total < 30, "waited for shutdown.timeout"
        assert exit_s >= 0
    finally:
        d.ctl.clear()
        for c in (writer, sub, mon, blk):
            c.close()


def test_sigterm_with_only_idle_clients_exits_at_once(fresh_durable):
    d = fresh_durable(config_text="shutdown:\n  timeout: 30s\n")
    sub, mon, blk = _idle_clients(d)
    try:
        t0 = time.monotonic()
        d.proxy.signal(signal.SIGTERM)
        _exit_time(d.proxy, 25)
        took = time.monotonic() - t0
        print("\nshutdown with a subscriber, a MONITOR and a BLPOP 0 client: exit %.3f s after SIGTERM"
              % took)
        assert d.proxy.proc.returncode == 0, d.proxy.describe()
        for c in (sub, mon, blk):
            c.expect_close(harness.scaled(5))
    finally:
        for c in (sub, mon, blk):
            c.close()


def test_a_reply_whose_fsync_never_comes_fails_with_its_reason_at_the_timeout(fresh_durable):
    d = fresh_durable(config_text="shutdown:\n  timeout: 2s\n")
    writer = d.conn(timeout=30)
    try:
        _held_set(d, writer)
        t0 = time.monotonic()
        d.proxy.signal(signal.SIGTERM)
        raw, value = writer.read_frame(harness.scaled(20))
        waited = time.monotonic() - t0
        assert isinstance(value, harness.Error), raw
        assert "shutdown.timeout" in value and "durable" in value, value
        assert waited >= 1.5, "failed %.3f s after SIGTERM, before shutdown.timeout (2 s)" % waited
        writer.expect_close(harness.scaled(5))
        # The final fsync at exit needs the disk back (a stuck fdatasync
        # cannot be interrupted): release it now.
        d.ctl.unblock()
        _exit_time(d.proxy, 10)
        print("\nheld reply failed %.3f s after SIGTERM (shutdown.timeout 2 s): %s" % (waited, value))
        assert d.proxy.proc.returncode == 0, d.proxy.describe()
    finally:
        d.ctl.clear()
        writer.close()
