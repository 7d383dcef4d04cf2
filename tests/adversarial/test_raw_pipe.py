"""Class 5: raw pipes.  A client's SYNC/PSYNC turns its session into a byte
pipe carrying the upstream's snapshot and stream, writes not yet durable
included; nothing on it can be held.  With durability always the proxy
refuses both unless durability.allow_replica_sync is set (replication
between proxied servers needs it; that replica is then outside the
contract)."""
import socket
import time

import pytest

import harness
from durability_util import durable, fresh_durable, reset  # noqa: F401


@pytest.fixture
def adv(durable):  # noqa: F811
    reset(durable)
    yield durable
    reset(durable)


@pytest.mark.parametrize("cmd", [("PSYNC", "?", "-1"), ("SYNC",), ("PSYNC", "0123456789012345678901234567890123456789", "1")])
def test_replica_sync_through_the_proxy_is_refused(adv, cmd):
    """A write is pending (fsync held); a client asking for the stream gets
    an error naming the command and the key that allows it, never the
    snapshot or the stream, and its connection goes on as a normal one."""
    with adv.conn() as w, adv.conn(timeout=10) as r, adv.direct() as c:
        adv.ctl.block()
        w.send_cmd("SET", "adv:pipe:k", "secret")
        harness.wait_until(lambda: c.call("GET", "adv:pipe:k") == b"secret", 5, "the upstream to execute the SET")
        r.send_cmd(*cmd)
        _, reply = r.read_frame(timeout=harness.scaled(5))
        assert isinstance(reply, harness.Error), reply
        assert reply.startswith("ERR durable-proxy: %s refused" % cmd[0]), reply
        assert "durability.allow_replica_sync" in reply, reply
        assert r.call("PING") == "PONG"
        adv.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"


def test_replica_sync_allowed_by_config_streams(fresh_durable):  # noqa: F811
    """durability.allow_replica_sync: true lets a replica through: it gets
    the snapshot and then the stream, as from Valkey."""
    d = fresh_durable(config_text="durability:\n  allow_replica_sync: true\n")
    with d.conn(timeout=10) as r, d.conn() as other:
        assert other.call("SET", "adv:pipe:before", "1") == "OK"
        r.send(harness.encode("PSYNC", "?", "-1"))
        line = r.read_line(10)
        assert line.startswith(b"+FULLRESYNC "), line
        while True:
            # Valkey sends a bare "\n" to a replica each second while its
            # BGSAVE runs (replicationCron): keep-alives, not part of the line.
            line = r.read_line(10).lstrip(b"\n")
            if line:
                break
        assert line.startswith(b"$"), line
        assert b"adv:pipe:before" in r.read_raw(int(line[1:]), 10)
        assert other.call("SET", "adv:pipe:during", "v") == "OK"
        want = harness.encode("SET", "adv:pipe:during", "v")
        seen = b""
        deadline = time.monotonic() + harness.scaled(5)
        while want not in seen:
            assert time.monotonic() < deadline, "the SET never arrived in the stream: %r" % seen[-300:]
            try:
                r._fill(0.2)
            except socket.timeout:
                continue
            seen += bytes(r.buf[r.pos:])
            r.pos = len(r.buf)


@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("cmd", [("PSYNC", "?", "-1"), ("SYNC",)])
def test_replica_sync_inside_multi_is_the_servers_refusal(fresh_durable, allow, cmd):  # noqa: F811
    """SYNC/PSYNC are refused inside MULTI by the server, which then aborts
    the transaction: the session must not turn into a raw pipe (with
    allow_replica_sync, before the fix it did, and the replies after it
    went out unheld) nor let the transaction run (without, before the fix
    the proxy's own refusal did not abort it)."""
    d = fresh_durable(config_text="durability:\n  allow_replica_sync: %s\n" % ("true" if allow else "false"))
    with d.conn(timeout=10) as r, d.conn() as w, d.direct() as c:
        r.send(harness.encode("MULTI") + harness.encode(*cmd) + harness.encode("SET", "adv:pipe:m", "1") +
               harness.encode("EXEC"))
        got = [r.read_frame(timeout=harness.scaled(5))[1] for _ in range(4)]
        assert got[0] == "OK" and isinstance(got[1], harness.Error) and got[2] == "QUEUED", got
        assert str(got[3]).startswith("EXECABORT"), got
        assert c.call("EXISTS", "adv:pipe:m") == 0
        d.ctl.block()
        w.send_cmd("SET", "adv:pipe:k", "secret")
        harness.wait_until(lambda: c.call("GET", "adv:pipe:k") == b"secret", 5, "the upstream to execute the SET")
        r.send_cmd("GET", "adv:pipe:k")
        assert r.nothing_pending(wait=0.5), "GET of a pending key answered before fsync"
        d.ctl.unblock()
        assert r.read_frame(timeout=harness.scaled(5))[1] == b"secret"
