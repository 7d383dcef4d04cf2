"""Plain pass-through: replies in order, byte-identical to a reference
server, with raw sockets, redis-py, redis-cli (RESP2 and RESP3) and
redis-benchmark; one upstream connection per client; SELECT per connection."""
import subprocess

import redis

from harness import (RespConn, client_by_name, compare, encode, hiredis_tool, run_benchmark,
                     run_cli)


def test_pipelined_replies_arrive_in_order_and_match_reference(target, reference):
    steps = [[["SET", "k%d" % i, "v%d" % i] for i in range(200)] +
             [["GET", "k%d" % i] for i in range(200)] +
             [["INCR", "counter"], ["LPUSH", "l", "a", "b"], ["LRANGE", "l", 0, -1],
              ["HSET", "h", "f", "1"], ["HGETALL", "h"], ["GET", "missing"],
              ["INCR", "k1"], ["NOSUCHCOMMAND", "x"], ["SET", "onlykey"],
              ["ZADD", "z", "1.5", "m"], ["ZSCORE", "z", "m"], ["EXISTS", "k1", "k2", "zz"]]]
    got = compare(target.addr, reference.addr, steps)
    values = [v for _, v in got]
    assert values[:200] == ["OK"] * 200
    assert values[200:400] == [b"v%d" % i for i in range(200)]


def test_replies_byte_identical_in_resp3(target, reference):
    steps = [[["SET", "a", "1"], ["HSET", "h", "x", "1", "y", "2"], ["HGETALL", "h"],
              ["SADD", "s", "m"], ["SMEMBERS", "s"], ["ZADD", "z", "2.5", "m"],
              ["ZSCORE", "z", "m"], ["GET", "nothing"], ["EXISTS", "a"],
              ["CONFIG", "GET", "maxmemory-policy"], ["DEL", "a"], ["BAD"]]]
    got = compare(target.addr, reference.addr, steps, proto=3)
    assert got[2][0].startswith(b"%2\r\n")  # a RESP3 map really came back


def test_request_split_into_single_bytes_is_answered_once(target):
    with target.conn() as c:
        for b in encode("SET", "split", "value") + encode("GET", "split"):
            c.send(bytes([b]))
        assert c.read_frames(2) == [(b"+OK\r\n", "OK"), (b"$5\r\nvalue\r\n", b"value")]
        assert c.nothing_pending()


def test_each_client_gets_its_own_upstream_connection(target):
    with target.direct() as d:
        conns = [RespConn(target.addr) for _ in range(5)]
        try:
            for i, c in enumerate(conns):
                assert c.call("CLIENT", "SETNAME", "it-own-%d" % i) == "OK"
            ids = {c.call("CLIENT", "ID") for c in conns}
            assert len(ids) == 5
            for i in range(5):
                assert client_by_name(d, "it-own-%d" % i) is not None
        finally:
            for c in conns:
                c.close()


def test_select_is_per_connection(target):
    with target.conn() as a, target.conn() as b:
        assert a.call("SELECT", "3") == "OK"
        assert a.call("SET", "k", "db3") == "OK"
        assert b.call("GET", "k") is None
        assert b.call("SET", "k", "db0") == "OK"
        assert a.call("GET", "k") == b"db3"
        assert a.call("SELECT", "99")[:4] == "ERR "
        assert a.call("GET", "k") == b"db3"
    with target.direct() as d:
        d.call("SELECT", "3")
        assert d.call("GET", "k") == b"db3"


def test_redis_py_workload_matches_reference(target, reference):
    def workload(port):
        r = redis.Redis(host="127.0.0.1", port=port)
        out = [r.set("s", "x"), r.append("s", "yz"), r.get("s"), r.incrby("n", 5),
               r.rpush("l", *range(10)), r.lrange("l", 2, 5), r.hset("h", mapping={"a": 1}),
               r.hgetall("h"), r.sadd("set", "a", "b"), sorted(r.smembers("set")),
               r.zadd("z", {"a": 1, "b": 2}), r.zrange("z", 0, -1, withscores=True),
               r.expire("s", 100), r.ttl("s") > 0, r.eval("return redis.call('GET', KEYS[1])",
                                                         1, "s")]
        p = r.pipeline(transaction=True)
        p.set("t", 1).incr("t").get("t")
        out.append(p.execute())
        try:
            r.lpush("s", "x")
        except redis.ResponseError as e:
            out.append(str(e))
        out.append(sorted(r.scan_iter()))
        r.close()
        return out
    assert workload(target.port) == workload(reference.port)


def test_redis_cli_resp2_and_resp3_output_matches_reference(target, reference):
    script = b"SET a 1\nHSET h f v\nHGETALL h\nGET missing\nINCR a\nSADD s x\nSMEMBERS s\n"
    for resp3 in (False, True):
        for port in (target.port, reference.port):
            with RespConn(("127.0.0.1", port)) as c:
                c.call("FLUSHALL")
        got = run_cli(target.port, ["--no-raw"], resp3=resp3, stdin=script)
        want = run_cli(reference.port, ["--no-raw"], resp3=resp3, stdin=script)
        assert got.returncode == 0, got.stderr
        assert got.stdout == want.stdout and got.stderr == want.stderr
        assert b'"v"' in got.stdout
    one = run_cli(target.port, ["--no-raw", "HGETALL", "h"], resp3=True)
    assert one.stdout == b'1# "f" => "v"\n'


def test_redis_benchmark_completes_without_errors(target):
    res = run_benchmark(target.port, ["-t", "set,get", "-n", "20000", "-c", "20", "-P", "8", "-q"])
    out = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, out
    assert "SET:" in out and "GET:" in out, out
    assert "rror" not in out, out


def test_hiredis_pipeline_replies_match(target, tmp_path):
    tool = hiredis_tool("hiredis_pipeline", tmp_path)
    res = subprocess.run([tool, "127.0.0.1", str(target.port), "500"], capture_output=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b"ok 1005\n"
