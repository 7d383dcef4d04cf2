"""The pass-through behaviours of issue 3 exercised through real clients, not
raw sockets: hiredis (tests/tools/hiredis_session.cc, RESP2), redis-cli in
RESP2 and RESP3 (-3), Debian's python3-redis (RESP2) and redis-benchmark.
Where a client's output is deterministic it is compared with the same run
against a reference server."""
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import redis

from harness import (RespConn, hiredis_tool, port_accepts, run_benchmark, run_cli, scaled,
                     wait_blocked, wait_until)

MB = 1 << 20


def upstream_client(target, pred):
    """The upstream's CLIENT LIST entry (dict) matching pred, or None."""
    with target.direct() as d:
        for line in d.call("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            if pred(fields):
                return fields
    return None


def blocked(f):
    """A CLIENT LIST entry of a connection blocked right now (flag b)."""
    return "b" in f.get("flags", "")


def cli_popen(port, args, resp3=False):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + (["-3"] if resp3 else []) + list(args)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def finish(proc, timeout=5):
    """Terminate a long-running redis-cli and return its stdout."""
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=timeout)
    return out


# ------------------------------------------------------------------ hiredis

@pytest.mark.parametrize("scenario", ["client-reply", "transaction", "pubsub", "blocking"])
def test_hiredis_session_scenarios(target, reference, tmp_path, scenario):
    tool = hiredis_tool("hiredis_session", tmp_path)
    for port in (reference.port, target.port):  # the reference proves the scenario
        res = subprocess.run([tool, "127.0.0.1", str(port), scenario], capture_output=True, timeout=60)
        assert res.returncode == 0, "port %d: %s" % (port, res.stderr.decode())
        assert res.stdout == b"ok %s\n" % scenario.encode()


@pytest.mark.proxy_only
def test_unreachable_upstream_error_reaches_every_client(fresh_target, tmp_path):
    t = fresh_target()
    t.upstream.stop()
    where = "127.0.0.1:%d" % t.upstream.port
    res = subprocess.run([hiredis_tool("hiredis_session", tmp_path), "127.0.0.1", str(t.port), "error"],
                         capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    assert where in res.stdout.decode() and "refused" in res.stdout.decode(), res.stdout
    with pytest.raises(redis.ResponseError, match=re.escape(where) + ".*refused"):
        redis.Redis(host="127.0.0.1", port=t.port).ping()
    for resp3 in (False, True):
        out = run_cli(t.port, ["PING"], resp3=resp3)
        text = (out.stdout + out.stderr).decode()
        assert where in text and "refused" in text, text
    assert t.proxy.alive()


# ------------------------------------------------------------ python3-redis

def _acl_user(target, name):
    for port in (target.port,):
        with RespConn(("127.0.0.1", port)) as c:
            assert c.call("ACL", "SETUSER", name, "on", ">pw", "~*", "+@all") == "OK"


def test_redis_py_auth_select_and_connection_state(target):
    _acl_user(target, "it-py")
    try:
        with pytest.raises(redis.ResponseError, match="WRONGPASS"):
            redis.Redis(host="127.0.0.1", port=target.port, username="it-py", password="bad").ping()
        r = redis.Redis(host="127.0.0.1", port=target.port, username="it-py", password="pw", db=3,
                        single_connection_client=True)
        assert r.acl_whoami() == "it-py"
        assert r.set("py-db", "three") and r.get("py-db") == b"three"
        assert r.execute_command("RESET") in ("RESET", b"RESET")       # back to db 0, default user
        assert r.acl_whoami() == "default" and r.get("py-db") is None
        r.close()
    finally:
        with target.direct() as d:
            d.call("ACL", "DELUSER", "it-py")
    with target.direct() as d:
        d.call("SELECT", "3")
        assert d.call("GET", "py-db") == b"three"


def test_redis_py_transactions_watch_and_discard(target):
    r = redis.Redis(host="127.0.0.1", port=target.port)
    other = redis.Redis(host="127.0.0.1", port=target.port)
    with r.pipeline() as p:
        p.watch("py-w")
        other.set("py-w", "changed")
        p.multi()
        p.set("py-w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("py-w") == b"changed"
    assert r.pipeline(transaction=True).set("py-t", 1).incr("py-t").get("py-t").execute() == [True, 2, b"2"]
    one = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True)
    assert one.execute_command("MULTI") == b"OK"
    assert one.execute_command("INCR", "py-t") == b"QUEUED"
    assert one.execute_command("DISCARD") == b"OK"
    assert one.get("py-t") == b"2"
    with pytest.raises(redis.ResponseError, match="NOSUCHCMD"):  # redis-py's reading of EXECABORT
        r.pipeline(transaction=True).set("py-t", 3).execute_command("NOSUCHCMD").execute()
    for c in (r, other, one):
        c.close()


def test_redis_py_pubsub_and_tracking_redirect(target):
    r = redis.Redis(host="127.0.0.1", port=target.port)
    ps = r.pubsub()
    ps.subscribe("py-a")
    ps.psubscribe("py-p*")
    got = [ps.get_message(timeout=2) for _ in range(2)]
    assert [(m["type"], m["channel"], m["data"]) for m in got] == \
        [("subscribe", b"py-a", 1), ("psubscribe", b"py-p*", 2)]
    assert r.publish("py-a", "hello") == 1 and r.publish("py-pz", "pat") == 1
    m1, m2 = ps.get_message(timeout=2), ps.get_message(timeout=2)
    assert (m1["type"], m1["data"]) == ("message", b"hello")
    assert (m2["type"], m2["pattern"], m2["channel"], m2["data"]) == ("pmessage", b"py-p*", b"py-pz", b"pat")
    ps.ping()
    pong = ps.get_message(timeout=2)
    assert pong["type"] == "pong", pong
    ps.unsubscribe()
    ps.punsubscribe()
    kinds = sorted(ps.get_message(timeout=2)["type"] for _ in range(2))
    assert kinds == ["punsubscribe", "unsubscribe"]
    assert r.publish("py-a", "nobody") == 0
    ps.close()

    # CLIENT TRACKING (RESP2: invalidations redirected to a subscriber)
    inv = r.pubsub()
    inv.subscribe("__redis__:invalidate")
    assert inv.get_message(timeout=2)["type"] == "subscribe"
    tracker = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True)
    # REDIRECT names the subscriber's connection as the server knows it
    client_id = int(upstream_client(target, lambda f: f.get("cmd") == "subscribe" and f.get("sub") == "1")["id"])
    assert tracker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id) == b"OK"
    tracker.get("py-tracked")
    r.set("py-tracked", "1")
    msg = inv.get_message(timeout=2)
    assert msg["channel"] == b"__redis__:invalidate" and msg["data"] == [b"py-tracked"], msg
    inv.close()
    tracker.close()
    r.close()


def test_redis_py_blocking_pop_and_client_unblock(target):
    r = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True)
    other = redis.Redis(host="127.0.0.1", port=target.port)
    assert r.blpop("py-empty", timeout=0.2) is None
    my_id = r.client_id()
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("v", r.blpop("py-never", timeout=0)))
    th.start()
    wait_until(lambda: other.client_unblock(my_id) == 1, 5, "CLIENT UNBLOCK to answer 1")
    th.join(5)
    assert result == {"v": None}
    th = threading.Thread(target=lambda: result.__setitem__("v", r.brpop("py-q", timeout=0)))
    th.start()
    with target.direct() as d:
        wait_blocked(d, "brpop")
    other.rpush("py-q", "job")
    th.join(5)
    assert result["v"] == (b"py-q", b"job")
    r.close()
    other.close()


def test_redis_py_monitor_sees_commands(target):
    r = redis.Redis(host="127.0.0.1", port=target.port)
    with r.monitor() as m:
        redis.Redis(host="127.0.0.1", port=target.port).set("py-mon", "x")
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            cmd = m.next_command()
            if "py-mon" in cmd["command"]:
                assert cmd["command"] == "SET py-mon x" and cmd["db"] == 0, cmd
                break
        else:
            pytest.fail("MONITOR never showed SET py-mon")
    r.close()


def test_redis_py_quit_and_client_kill_of_self(target):
    r = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True)
    r.execute_command("CLIENT", "SETNAME", "it-py-quit")
    assert r.execute_command("QUIT") is True  # redis-py's reading of +OK
    wait_until(lambda: upstream_client(target, lambda f: f.get("name") == "it-py-quit") is None, 5,
               "the upstream connection of a client that sent QUIT to close")
    r.close()
    r = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True)
    r.execute_command("CLIENT", "SETNAME", "it-py-kill")
    assert r.client_kill_filter(_id=r.client_id(), skipme=False) == 1
    with pytest.raises(redis.ConnectionError):
        r.execute_command("PING")  # the proxy closed the connection after the reply
    wait_until(lambda: upstream_client(target, lambda f: f.get("name") == "it-py-kill") is None, 5,
               "the killed client's upstream connection to close")
    r.close()


def test_redis_py_hundred_megabyte_value(target):
    value = os.urandom(MB) * 100
    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=60)
    assert r.set("py-huge", value)
    assert r.get("py-huge") == value
    assert r.strlen("py-huge") == 100 * MB
    r.delete("py-huge")
    r.close()


def test_redis_py_sees_upstream_closing_mid_stream(target):
    r = redis.Redis(host="127.0.0.1", port=target.port, single_connection_client=True, socket_timeout=10)
    r.execute_command("CLIENT", "SETNAME", "it-py-mid")
    assert r.set("py-mid", "1") and r.get("py-mid") == b"1"
    errors = []

    def pop():
        try:
            r.blpop("py-mid-never", timeout=0)
        except redis.ConnectionError as e:
            errors.append(e)
    th = threading.Thread(target=pop)
    th.start()
    wait_until(lambda: upstream_client(target, lambda f: f.get("name") == "it-py-mid" and
                                       blocked(f)) is not None, 5, "the BLPOP to block")
    conn = upstream_client(target, lambda f: f.get("name") == "it-py-mid")
    with target.direct() as d:
        assert d.call("CLIENT", "KILL", "ID", conn["id"]) == 1
    th.join(10)
    assert len(errors) == 1, "the client was not closed after its upstream went away"
    r.close()


@pytest.mark.proxy_only
def test_redis_py_shutdown_and_sigterm(fresh_target):
    t = fresh_target()
    r = redis.Redis(host="127.0.0.1", port=t.port, single_connection_client=True, socket_timeout=10)
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("v", r.blpop("py-sig", timeout=1)))
    th.start()
    with t.direct() as d:
        wait_blocked(d, "blpop")
    t.proxy.signal(signal.SIGTERM)
    th.join(5)
    assert result == {"v": None}        # the in-flight reply was delivered
    t.proxy.proc.wait(12)
    assert t.proxy.proc.returncode == 0
    r.close()
    # SHUTDOWN through a new proxy: the client sees the connection end
    t2 = fresh_target()
    r = redis.Redis(host="127.0.0.1", port=t2.port)
    assert r.set("x", 1)
    r.shutdown(nosave=True)             # redis-py expects the connection to drop
    t2.upstream.proc.wait(5)
    assert t2.upstream.proc.returncode == 0
    r.close()


# ---------------------------------------------------------------- redis-cli

SCRIPT = (b"SELECT 2\nSET k in2\nGET k\nMULTI\nSET a 1\nINCR a\nLPUSH a x\nEXEC\n"
          b"MULTI\nSET b 1\nDISCARD\nGET b\nMULTI\nNOSUCHCMD\nEXEC\n"
          b"ACL SETUSER it-cli on >pw ~* +@all\nAUTH it-cli bad\nAUTH it-cli pw\nACL WHOAMI\n"
          b"HSET h f v\nHGETALL h\nCLIENT TRACKING ON\nGET t\nSET t 1\nRESET\nGET k\nHGETALL h\n"
          b"PING\nDEL h\nQUIT\n")


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_session_script_matches_reference(target, reference, resp3):
    args = ["--no-raw"] + (["--show-pushes", "yes"] if resp3 else [])
    outs = []
    for port in (target.port, reference.port):
        outs.append(run_cli(port, args, resp3=resp3, stdin=SCRIPT))
        with RespConn(("127.0.0.1", port)) as c:
            c.call("ACL", "DELUSER", "it-cli")
    got, want = outs
    assert got.returncode == want.returncode == 0, got.stderr
    assert (got.stdout, got.stderr) == (want.stdout, want.stderr)
    text = got.stdout.decode()
    assert '"in2"' in text and "EXECABORT" in text and '"it-cli"' in text and "RESET" in text
    if resp3:
        assert "invalidate" in text and '1# "f" => "v"' in text


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_hello_user_and_db_flags(target, reference, resp3):
    _acl_user(target, "it-cli2")
    try:
        hello = [run_cli(p, ["--no-raw", "HELLO", "3" if resp3 else "2"], resp3=resp3)
                 for p in (target.port, reference.port)]
        norm = [re.sub(rb'("id"(?: =>|\n\s*\d+\)) \(integer\) )\d+', rb"\1N", h.stdout) for h in hello]
        assert norm[0] == norm[1] and b"N\n" in norm[0], hello
        assert (b'"proto" => (integer) 3' if resp3 else b'"proto"\n 6) (integer) 2') in norm[0], norm[0]
        res = run_cli(target.port, ["--user", "it-cli2", "--pass", "pw", "-n", "4", "SET", "cli-db", "four"],
                      resp3=resp3)
        assert res.returncode == 0 and res.stdout == b"OK\n", res.stdout + res.stderr
        res = run_cli(target.port, ["--user", "it-cli2", "--pass", "pw", "ACL", "WHOAMI"], resp3=resp3)
        assert res.stdout == b"it-cli2\n"
        with target.direct() as d:
            d.call("SELECT", "4")
            assert d.call("GET", "cli-db") == b"four"
    finally:
        with target.direct() as d:
            d.call("ACL", "DELUSER", "it-cli2")


def _subscribe_run(port, upstream, resp3):
    proc = cli_popen(port, ["SUBSCRIBE", "cli-ch"], resp3=resp3)
    with RespConn(upstream) as d:
        wait_until(lambda: d.call("PUBSUB", "NUMSUB", "cli-ch")[1] == 1, 5, "redis-cli to subscribe")
        assert d.call("PUBLISH", "cli-ch", "m1") == 1
        assert d.call("PUBLISH", "cli-ch", "m2") == 1
    deadline = time.monotonic() + scaled(5)
    out = b""
    os.set_blocking(proc.stdout.fileno(), False)
    while out.count(b"m2") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        out += proc.stdout.read() or b""
    return out + finish(proc)


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_subscribe_matches_reference(target, reference, resp3):
    got = _subscribe_run(target.port, target.upstream.addr, resp3)
    want = _subscribe_run(reference.port, reference.addr, resp3)
    assert got == want
    assert b"m1" in got and b"m2" in got


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_blocking_pop_unblock_and_client_leaving(target, resp3):
    proc = cli_popen(target.port, ["BLPOP", "cli-q", "0"], resp3=resp3)
    wait_until(lambda: upstream_client(target, blocked) is not None, 5,
               "redis-cli's BLPOP to block")
    assert run_cli(target.port, ["RPUSH", "cli-q", "job"]).stdout == b"1\n"
    out, _ = proc.communicate(timeout=5)
    assert out == b"cli-q\njob\n"
    proc = cli_popen(target.port, ["BLPOP", "cli-never", "0"], resp3=resp3)
    wait_until(lambda: upstream_client(target, blocked) is not None, 5,
               "the second BLPOP to block")
    cid = upstream_client(target, blocked)["id"]
    assert run_cli(target.port, ["CLIENT", "UNBLOCK", cid], resp3=resp3).stdout == b"1\n"
    out, _ = proc.communicate(timeout=5)
    assert out == b"\n"  # nil, printed raw
    # a client that leaves: its upstream connection goes too
    proc = cli_popen(target.port, ["BLPOP", "cli-leave", "0"], resp3=resp3)
    wait_until(lambda: upstream_client(target, blocked) is not None, 5,
               "the third BLPOP to block")
    proc.kill()
    proc.wait()
    wait_until(lambda: upstream_client(target, lambda f: f.get("cmd") == "blpop") is None, 5,
               "the upstream connection of the killed redis-cli to close")


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_monitor(target, resp3):
    proc = cli_popen(target.port, ["MONITOR"], resp3=resp3)
    os.set_blocking(proc.stdout.fileno(), False)
    out = b""
    deadline = time.monotonic() + scaled(5)
    with RespConn(target.addr) as other:  # repeat until redis-cli's MONITOR has started
        other.call("SELECT", "6")
        while b"cli-mon" not in out and time.monotonic() < deadline:
            other.call("SET", "cli-mon", "v 1")
            time.sleep(0.05)
            out += proc.stdout.read() or b""
    out += finish(proc)
    assert out.startswith(b"OK\n"), out
    assert re.search(rb'\d+\.\d+ \[6 [0-9.:]+\] "SET" "cli-mon" "v 1"', out), out


def test_redis_cli_rdb_and_replica_through_the_session_pipe(target, tmp_path):
    run_cli(target.port, ["SET", "cli-rdb", "1"])
    rdb = tmp_path / "dump.rdb"
    res = run_cli(target.port, ["--rdb", str(rdb)], timeout=30)
    assert res.returncode == 0, res.stderr
    data = rdb.read_bytes()
    assert data.startswith(b"REDIS") and b"cli-rdb" in data
    proc = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(target.port), "--replica"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        out = b""
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline and b'"cli-stream"' not in out:
            if b"sync with master" in out.lower() or b"full resync" in out.lower() or out:
                run_cli(target.port, ["SET", "cli-stream", "x"])
            time.sleep(0.1)
            out += proc.stdout.read() or b""
        assert b'"SET","cli-stream","x"' in out or b'"SET" "cli-stream" "x"' in out, out
    finally:
        finish(proc)


def test_redis_cli_pipe_inline_and_protocol_error(target, reference):
    good = b"SET p 1\r\nGET p\r\nSET \"sp ace\" 'q'\r\n\r\nPING\r\n"
    bad = b"SET p 2\r\n*1\r\n+PING\r\nGET p\r\n"
    for data, code in ((good, 0), (bad, 1)):
        outs = [run_cli(port, ["--pipe"], stdin=data) for port in (target.port, reference.port)]
        assert outs[0].returncode == outs[1].returncode == code, outs
        assert outs[0].stdout == outs[1].stdout, outs
        if code == 0:
            assert b"errors: 0, replies: 4" in outs[0].stdout, outs[0].stdout
        else:
            assert b"Protocol error: expected '$', got '+'" in outs[0].stdout + outs[0].stderr, outs[0]
    with RespConn(target.addr) as c:
        assert c.call("GET", "p") == b"2" and c.call("GET", "sp ace") == b"q"


def test_redis_cli_hundred_megabyte_value(target, tmp_path):
    path = tmp_path / "value"
    path.write_bytes(b"z" * (100 * MB))
    with open(path, "rb") as f:
        res = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(target.port), "-x", "SET", "cli-big"],
                             stdin=f, capture_output=True, timeout=60)
    assert res.stdout == b"OK\n", res.stderr
    assert run_cli(target.port, ["STRLEN", "cli-big"], resp3=True).stdout == b"104857600\n"
    run_cli(target.port, ["DEL", "cli-big"])


@pytest.mark.proxy_only
def test_redis_cli_shutdown_and_sigint(fresh_target):
    t = fresh_target()
    res = run_cli(t.port, ["SHUTDOWN", "NOSAVE"], resp3=True)
    assert res.stdout == b"", res.stdout
    t.upstream.proc.wait(5)
    assert t.upstream.proc.returncode == 0
    t2 = fresh_target()
    proc = cli_popen(t2.port, ["BLPOP", "cli-sig", "1"], resp3=True)
    wait_until(lambda: upstream_client(t2, blocked) is not None, 5, "BLPOP to block")
    t2.proxy.signal(signal.SIGINT)
    wait_until(lambda: not port_accepts(t2.port), 2, "the proxy to stop accepting")
    out, _ = proc.communicate(timeout=5)
    assert out == b"\n"  # the in-flight BLPOP timed out and its null still came
    t2.proxy.proc.wait(12)
    assert t2.proxy.proc.returncode == 0


# ----------------------------------------------------------- redis-benchmark

@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_benchmark_mixed_commands_without_errors(target, resp3):
    res = run_benchmark(target.port, (["-3"] if resp3 else []) +
                        ["-t", "ping,set,get,incr,lpush,rpop,sadd,hset,lrange_100,mset", "-n", "3000",
                         "-c", "10", "-P", "4", "-r", "1000", "--csv"])
    out = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, out
    assert "rror" not in out, out
    rows = [line for line in res.stdout.decode().splitlines()[1:] if line.strip()]
    assert len(rows) >= 10, out
    assert all(float(r.split(",")[1].strip('"')) > 0 for r in rows), out
