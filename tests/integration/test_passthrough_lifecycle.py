"""Ends of a session and of the process: SHUTDOWN, CLIENT KILL of self,
SYNC/PSYNC from a client (the session becomes a raw byte pipe), an upstream
that is gone or closes mid-stream, a client that leaves, SIGTERM/SIGINT."""
import signal
import socket
import time

import pytest

import harness
from harness import RespConn, client_by_name, encode, port_accepts, wait_blocked, wait_until


def test_shutdown_closes_the_connection_without_reply(fresh_target):
    t = fresh_target()
    with t.conn() as c:
        assert c.call("SET", "x", "1") == "OK"
        c.send(encode("SHUTDOWN", "NOSAVE"))
        assert c.expect_close(5) == b""
    t.upstream.proc.wait(5)
    assert t.upstream.proc.returncode == 0


@pytest.mark.proxy_only
def test_upstream_unreachable_gives_error_naming_it_then_close(fresh_target):
    t = fresh_target()
    t.upstream.stop()
    with t.conn() as c:
        rest = c.expect_close(10)
    assert rest.startswith(b"-ERR ") and rest.endswith(b"\r\n") and rest.count(b"\r\n") == 1, rest
    assert b"127.0.0.1:%d" % t.upstream.port in rest, rest
    assert b"refused" in rest.lower(), "cause missing: %r" % rest
    assert t.proxy.alive()


def test_client_kill_of_self_answers_then_closes(target):
    with target.conn() as c:
        cid = c.call("CLIENT", "ID")
        c.send(encode("CLIENT", "KILL", "ID", str(cid), "SKIPME", "no") + encode("PING"))
        assert c.expect_close() == b":1\r\n"
    with target.conn() as c:
        info = c.call("CLIENT", "INFO").decode()
        addr = [f for f in info.split() if f.startswith("addr=")][0][5:]
        c.send(encode("CLIENT", "KILL", addr) + encode("PING"))
        assert c.expect_close() == b"+OK\r\n"
    with target.conn() as c:  # the target still serves others
        assert c.call("PING") == "PONG"


def _read_rdb_transfer(c):
    """Skip the newlines sent while the snapshot is prepared, then read $<n> + n bytes.
    (The keep-alives are bare "\n", so one can sit in front of the "$<n>\r\n" line.)"""
    while True:
        line = c.read_line(10).lstrip(b"\n")
        if line:
            break
    assert line.startswith(b"$"), line
    payload = c.read_raw(int(line[1:]), 10)
    # REDIS0010/11 up to Valkey 8.x; VALKEY080 from Valkey 9 (a SYNC client has no capa eof).
    assert payload.startswith(b"REDIS") or payload.startswith(b"VALKEY"), payload[:20]
    return payload


def _wait_for_in_stream(c, needle, timeout=5):
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        assert time.monotonic() < deadline, "%r never arrived in stream: %r" % (needle, seen[-300:])
        try:
            c._fill(0.2)
        except socket.timeout:
            continue
        seen += bytes(c.buf[c.pos:])
        c.pos = len(c.buf)
    return seen


# With durability always the proxy refuses a client's SYNC/PSYNC unless
# durability.allow_replica_sync is set (tests/adversarial/test_raw_pipe.py).
raw_pipe = pytest.mark.skipif(harness.DURABILITY == "always",
                              reason="SYNC/PSYNC are refused with durability always (test_raw_pipe.py)")


@raw_pipe
def test_psync_from_a_client_turns_the_session_into_a_byte_pipe(target):
    with target.conn() as other:
        other.call("SET", "before-sync", "1")
    with target.conn(timeout=10) as r, target.conn() as other:
        r.send(encode("PSYNC", "?", "-1"))
        line = r.read_line(10)
        assert line.startswith(b"+FULLRESYNC ") and len(line.split()) == 3, line
        rdb = _read_rdb_transfer(r)
        assert b"before-sync" in rdb
        other.call("SET", "during-sync", "v")
        stream = _wait_for_in_stream(r, encode("SET", "during-sync", "v"))
        assert b"*" in stream
        r.send(encode("REPLCONF", "ACK", "0"))  # a replica's traffic, no reply expected
        assert other.call("PING") == "PONG"


@raw_pipe
def test_sync_from_a_client_gets_snapshot_then_stream(target):
    with target.conn(timeout=10) as r, target.conn() as other:
        other.call("SET", "sync-before", "1")
        r.send(b"SYNC\r\n")
        assert b"sync-before" in _read_rdb_transfer(r)
        other.call("LPUSH", "sync-list", "x")
        _wait_for_in_stream(r, encode("LPUSH", "sync-list", "x"))


def test_upstream_closing_mid_stream_delivers_earlier_replies_then_closes(target):
    with target.conn() as c, target.direct() as d:
        c.send(encode("CLIENT", "SETNAME", "it-midstream") + encode("SET", "m", "1") +
               encode("GET", "m") + encode("BLPOP", "never-filled", "0"))
        assert [v for _, v in c.read_frames(3)] == ["OK", "OK", b"1"]
        wait_blocked(d, "blpop")
        upstream_conn = client_by_name(d, "it-midstream")
        assert d.call("CLIENT", "KILL", "ID", upstream_conn["id"]) == 1
        rest = c.expect_close(5)
        # Valkey itself sends nothing; a proxy may add one error line
        assert rest == b"" or (rest.startswith(b"-") and rest.count(b"\r\n") == 1), rest


def test_client_that_leaves_gets_its_upstream_closed_and_late_replies_dropped(target):
    with target.conn() as setup:
        setup.call("SET", "bigish", "x" * 100000)
    c = target.conn()
    c.call("CLIENT", "SETNAME", "it-leaver")
    c.send(b"".join(encode("GET", "bigish") for _ in range(200)) + encode("BLPOP", "leave-q", "0"))
    c.close()
    with target.direct() as d:
        wait_until(lambda: client_by_name(d, "it-leaver") is None, 5,
                   "the leaver's upstream connection to close")
        assert d.call("RPUSH", "leave-q", "late") == 1  # nobody pops it any more
    with target.conn() as other:
        assert other.call("LLEN", "leave-q") == 1
        assert other.call("PING") == "PONG"


@pytest.mark.proxy_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_accepting_finishes_in_flight_then_exits_zero(fresh_target, sig):
    t = fresh_target()
    with t.conn() as busy:
        busy.send(encode("BLPOP", "sig-q", "1"))
        with t.direct() as d:
            wait_blocked(d, "blpop")
        t0 = time.monotonic()
        t.proxy.signal(sig)
        wait_until(lambda: not port_accepts(t.proxy.port), 2, "the proxy to stop accepting")
        assert busy.read_frame(5) == (b"*-1\r\n", None)   # the in-flight reply still comes
        assert time.monotonic() - t0 >= 0.8
    t.proxy.proc.wait(12)
    assert t.proxy.proc.returncode == 0, t.proxy.describe()


@pytest.mark.proxy_only
def test_idle_proxy_exits_zero_on_sigterm_with_idle_clients(fresh_target):
    t = fresh_target()
    idle = RespConn(t.addr)
    assert idle.call("PING") == "PONG"
    t0 = time.monotonic()
    t.proxy.signal(signal.SIGTERM)
    t.proxy.proc.wait(12)
    assert t.proxy.proc.returncode == 0
    assert time.monotonic() - t0 < 11
    idle.close()
