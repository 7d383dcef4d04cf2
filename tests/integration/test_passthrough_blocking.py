"""Blocking commands (answered when served or at timeout, commands pipelined
behind them wait, CLIENT UNBLOCK ends them) and MONITOR."""
import re
import time

from harness import RespConn, encode, wait_blocked


def test_blocking_pop_times_out_with_null(target):
    for proto, null in ((2, b"*-1\r\n"), (3, b"_\r\n")):
        with target.conn() as c:
            c.call("HELLO", str(proto))
            t0 = time.monotonic()
            assert c.call_raw("BLPOP", "empty", "0.2") == null
            assert time.monotonic() - t0 >= 0.15


def test_commands_pipelined_behind_a_blocked_one_wait_for_it(target):
    with target.conn() as c, target.conn() as other:
        c.send(encode("BLPOP", "q", "0") + encode("SET", "after", "1") + encode("GET", "after"))
        with target.direct() as d:
            wait_blocked(d, "blpop")
        assert c.nothing_pending(0.3)
        assert other.call("GET", "after") is None  # not executed yet either
        assert other.call("RPUSH", "q", "job") == 1
        assert c.read_frames(3) == [(b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n", [b"q", b"job"]),
                                    (b"+OK\r\n", "OK"), (b"$1\r\n1\r\n", b"1")]


def test_other_blocking_commands_are_served(target):
    with target.conn() as c, target.conn() as other:
        c.send(encode("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0") +
               encode("BZPOPMIN", "z", "0") +
               encode("XREAD", "BLOCK", "0", "STREAMS", "st", "$"))
        with target.direct() as d:
            wait_blocked(d, "blmove")
            assert c.nothing_pending(0.2)
            other.call("RPUSH", "src", "m")
            assert c.read_frame()[1] == b"m"
            wait_blocked(d, "bzpopmin")
            other.call("ZADD", "z", "1", "x")
            assert c.read_frame()[1] == [b"z", b"x", b"1"]
            wait_blocked(d, "xread")  # XREAD must be blocked before the entry exists
        other.call("XADD", "st", "1-1", "f", "v")
        assert c.read_frame()[1] == [[b"st", [[b"1-1", [b"f", b"v"]]]]]


def test_client_unblock_ends_a_blocked_command(target):
    with target.conn() as c, target.conn() as other:
        cid = c.call("CLIENT", "ID")
        c.send(encode("BLPOP", "never", "0") + encode("PING"))
        with target.direct() as d:
            wait_blocked(d, "blpop")
        assert other.call("CLIENT", "UNBLOCK", str(cid)) == 1
        assert c.read_frames(2) == [(b"*-1\r\n", None), (b"+PONG\r\n", "PONG")]
        c.send(encode("BLPOP", "never", "0"))
        with target.direct() as d:
            wait_blocked(d, "blpop")
        assert other.call("CLIENT", "UNBLOCK", str(cid), "ERROR") == 1
        raw, value = c.read_frame()
        assert raw.startswith(b"-UNBLOCKED ")
        assert other.call("CLIENT", "UNBLOCK", str(cid)) == 0


def _monitor_lines(mon, marker, count):
    lines = []
    while len(lines) < count:
        raw, value = mon.read_frame()
        if marker in value:  # the proxy's own control traffic may show up too
            lines.append(value)
    return lines


def test_monitor_streams_every_command(target):
    with target.conn() as mon, target.conn() as other:
        assert mon.call("MONITOR") == "OK"
        other.call("SET", "mon-key", "v 1")
        other.call("SELECT", "4")
        other.call("GET", "mon-key")
        lines = _monitor_lines(mon, "mon-key", 2)
        assert re.fullmatch(r'\d+\.\d+ \[0 [0-9.:]+\] "SET" "mon-key" "v 1"', lines[0]), lines
        assert re.fullmatch(r'\d+\.\d+ \[4 [0-9.:]+\] "GET" "mon-key"', lines[1]), lines


def test_monitor_client_can_quit_and_reset(target):
    with target.conn() as mon:
        mon.call("MONITOR")
        mon.send(encode("RESET"))
        frames = []
        while not frames or frames[-1] != "RESET":
            frames.append(mon.read_frame()[1])
        with target.conn() as other:
            other.call("SET", "after-reset", "1")
        assert mon.call("PING") == "PONG"   # monitoring stopped: no more lines
        assert mon.nothing_pending()
    with target.conn() as mon:
        mon.call("MONITOR")
        mon.send(encode("QUIT"))
        rest = mon.expect_close()
        assert rest.endswith(b"+OK\r\n")


def test_monitor_sees_commands_of_a_transaction(target):
    with target.conn() as mon, RespConn(target.addr) as other:
        mon.call("MONITOR")
        other.send(encode("MULTI") + encode("SET", "mon-tx", "1") + encode("EXEC"))
        assert [v for _, v in other.read_frames(3)] == ["OK", "QUEUED", ["OK"]]
        lines = _monitor_lines(mon, '"mon-tx"', 1)
        assert '"SET" "mon-tx" "1"' in lines[0]
