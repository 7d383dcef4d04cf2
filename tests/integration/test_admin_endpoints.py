"""The admin HTTP endpoints of a running proxy (durability always) in front
of a real redis-server that requires a password, with an admin token set:
probes open, /metrics and /status behind the token, /status JSON contents,
metric counts that follow real traffic, secrets nowhere, and malformed or
oversized HTTP requests answered 400/413 without disturbing the proxy."""
import os
import random
import re
import subprocess

import pytest

import harness
from admin_util import (metrics, parse_metrics, raw_exchange, request, sample, status_json,
                        status_of)

pytestmark = pytest.mark.proxy_only

PASSWORD = "pw-Zq81-upstream-secret"
TOKEN = "tok-Jx55-admin-secret"
AUTH = {"Authorization": "Bearer " + TOKEN}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin")
    upstream = harness.Server(tmp, ["--requirepass", PASSWORD], name="upstream")
    pw_file = os.path.join(str(tmp), "upstream-password")
    with open(pw_file, "w") as f:
        f.write(PASSWORD + "\n")
    config = ("upstream:\n  password_file: %s\nadmin:\n  token_env: DP_TEST_ADMIN_TOKEN\n"
              "logging:\n  level: debug\n" % pw_file)
    proxy = harness.Proxy(tmp, upstream.port, "always", config_text=config,
                          env={"DP_TEST_ADMIN_TOKEN": TOKEN})
    yield upstream, proxy
    proxy.stop()
    upstream.stop()


def client(proxy):
    c = harness.RespConn(proxy.addr)
    assert c.call("AUTH", PASSWORD) == "OK"
    return c


def test_probes_answer_without_token_and_the_rest_needs_it(node):
    _, proxy = node
    assert request(proxy.admin_port, "GET", "/healthz")[0] == 200
    status, _, body = request(proxy.admin_port, "GET", "/readyz")
    assert (status, body.strip()) == (200, "ready")
    for path in ("/metrics", "/status"):
        status, headers, _ = request(proxy.admin_port, "GET", path)
        assert status == 401, path
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert request(proxy.admin_port, "GET", path, {"Authorization": "Bearer wrong"})[0] == 401
        assert request(proxy.admin_port, "GET", path, AUTH)[0] == 200
    # Wrong method and unknown path: 405 with Allow, 404.
    status, headers, _ = request(proxy.admin_port, "POST", "/metrics", AUTH, body=b"")
    assert status == 405 and headers.get("Allow") == "GET"
    assert request(proxy.admin_port, "GET", "/nope", AUTH)[0] == 404


def test_status_json_reports_version_config_offsets_and_no_secret(node):
    _, proxy = node
    with client(proxy) as c:
        for i in range(20):
            assert c.call("SET", "status:%d" % i, "v" * 100) == "OK"
        st = status_json(proxy.admin_port, AUTH)
        version = subprocess.run([harness.DP_BINARY, "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[-1]
        assert st["version"] == version
        assert st["ready"] is True and "not_ready_reason" not in st
        assert st["durability"] == "always"
        assert st["clients"] >= 1  # this connection
        assert re.fullmatch(r"[0-9a-f]{40}", st["replid"])
        off = st["offsets"]
        # Every SET was acknowledged, so it is fsynced: 20 SETs of 100-byte
        # values are well over 2000 stream bytes past the checkpoint.
        assert off["fsynced"] >= st["checkpoint"]["offset"] + 20 * 100
        assert off["received"] >= off["fsynced"] and off["upstream"] >= off["fsynced"]
        assert st["lag_bytes"] == max(0, off["upstream"] - off["fsynced"])
        assert st["held_replies"] == 0 and st["held_bytes"] == 0
        assert st["replica_link"] == "streaming" and st["log_failed"] is False
        cfg = st["config"]
        assert cfg["upstream.address"] == "127.0.0.1:%d" % node[0].port
        assert cfg["admin.token_env"] == "DP_TEST_ADMIN_TOKEN"
        assert cfg["upstream.password"] == "set" and cfg["admin.token"] == "set"
        assert cfg["durability.mode"] == "always"
    # The secrets appear in no answer the proxy gives about itself.
    texts = [request(proxy.admin_port, "GET", p, AUTH)[2] for p in ("/status", "/metrics")]
    with client(proxy) as c:
        texts.append(bytes(c.call("INFO", "durability")).decode())
    for t in texts:
        assert PASSWORD not in t and TOKEN not in t


def test_metrics_follow_commands_holds_and_fsyncs(node):
    _, proxy = node
    before = metrics(proxy.admin_port, AUTH)
    with client(proxy) as c:
        for i in range(30):
            assert c.call("SET", "m:%d" % i, "x" * 50) == "OK"
        for i in range(10):
            assert c.call("GET", "m:%d" % i) == b"x" * 50
        assert c.call("PING") == "PONG"
        info = bytes(c.call("INFO", "durability")).decode()
    after = metrics(proxy.admin_port, AUTH)

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("durable_proxy_commands_total", **{"class": "write"}) == 30
    assert delta("durable_proxy_commands_total", **{"class": "read"}) == 10
    assert delta("durable_proxy_commands_total", **{"class": "other"}) >= 2  # AUTH, PING
    assert delta("durable_proxy_commands_total", **{"class": "proxy"}) == 1  # INFO durability
    # Each acknowledged SET waited for the log: one hold-time observation each.
    assert delta("durable_proxy_hold_seconds_count", kind="write") == 30
    assert delta("durable_proxy_hold_seconds_sum", kind="write") > 0
    assert delta("durable_proxy_hold_seconds_count", kind="read") == 0  # nothing pending
    # Group commits: at least one, at most one per SET; their bytes cover the SETs.
    commits = delta("durable_proxy_fsync_seconds_count")
    assert 1 <= commits <= 30 + 5
    assert delta("durable_proxy_fsync_batch_bytes_count") == commits
    assert delta("durable_proxy_fsync_batch_bytes_sum") >= 30 * 50
    assert delta("durable_proxy_fsync_seconds_sum") > 0
    fsynced = sample(after, "durable_proxy_offset_fsynced_bytes")
    assert fsynced - sample(before, "durable_proxy_offset_fsynced_bytes") >= 30 * 50
    assert sample(after, "durable_proxy_offset_received_bytes") >= fsynced
    assert sample(after, "durable_proxy_ready") == 1
    assert sample(after, "durable_proxy_upstream_connected") == 1
    assert sample(after, "durable_proxy_replica_link_up") == 1
    assert sample(after, "durable_proxy_log_failed") == 0
    assert sample(after, "durable_proxy_log_bytes") > 0
    assert sample(after, "durable_proxy_held_replies", kind="write") == 0
    assert "fsynced_offset:" in info


GARBAGE = [
    (b"\x00\x01\x02 binary nonsense\r\n\r\n", 400),
    (b"GET /metrics HTTP/9.9\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost localhost\r\n\r\n", 400),   # header without colon
    (b"GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /checkpoint HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 413),
    (b"GET /" + b"p" * 20000 + b" HTTP/1.1\r\n\r\n", 413),
    (b"POST /checkpoint HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n", 413),
    (b"*1\r\n$4\r\nPING\r\n", 400),   # RESP on the HTTP port
]


def test_malformed_and_oversized_requests_get_400_or_413_and_change_nothing(node):
    upstream, proxy = node
    before = metrics(proxy.admin_port, AUTH)
    with client(proxy) as busy:  # a client in the middle of its work
        assert busy.call("SET", "garbage:before", "1") == "OK"
        for data, want in GARBAGE:
            reply = raw_exchange(proxy.admin_port, data)
            assert status_of(reply) == want, (data[:60], reply[:200])
            assert b"Connection: close" in reply
        # Same, byte by byte for one of each kind.
        assert status_of(raw_exchange(proxy.admin_port, [bytes([b]) for b in GARBAGE[2][0]])) == 400
        # A slow, huge header sent in pieces.
        pieces = [b"GET /metrics HTTP/1.1\r\n"] + [b"X-Filler: " + b"b" * 1000 + b"\r\n"] * 20
        assert status_of(raw_exchange(proxy.admin_port, pieces)) == 413
        # The proxy serves as before: the same client, new clients, the probes.
        assert busy.call("SET", "garbage:after", "2") == "OK"
        assert busy.call("GET", "garbage:before") == b"1"
    with client(proxy) as c:
        assert c.call("GET", "garbage:after") == b"2"
    assert proxy.alive()
    assert request(proxy.admin_port, "GET", "/readyz")[0] == 200
    # A keep-alive connection answers two requests in a row after all that.
    two = raw_exchange(proxy.admin_port, b"GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n"
                       b"Connection: close\r\n\r\n", first_reply=False)
    assert two.count(b"HTTP/1.1 200 OK") == 2, two
    after = metrics(proxy.admin_port, AUTH)
    counted = (sample(after, "durable_proxy_errors_total", cause="admin_request") -
               sample(before, "durable_proxy_errors_total", cause="admin_request"))
    assert counted == len(GARBAGE) + 2
    assert sample(after, "durable_proxy_errors_total", cause="client_protocol") == \
        sample(before, "durable_proxy_errors_total", cause="client_protocol")


def test_parse_metrics_rejects_what_is_not_a_sample():
    # The reader above is strict, so the checks that use it can fail.
    with pytest.raises(AssertionError):
        parse_metrics("durable_proxy_x{kind=\"a\" 1\n")
    assert parse_metrics('a_total{k="v"} 3\n# HELP x\n') == {("a_total", frozenset({("k", "v")})): 3.0}


def test_every_exposed_metric_is_documented_in_deploy_readme(node):
    _, proxy = node
    _, _, body = request(proxy.admin_port, "GET", "/metrics", AUTH)
    families = re.findall(r"(?m)^# TYPE (\S+) (counter|gauge|histogram)$", body)
    assert len(families) >= 20
    with open(os.path.join(harness.REPO, "deploy", "README.md")) as f:
        readme = f.read()
    missing = [name for name, _ in families if "`%s" % name not in readme]
    assert not missing, "deploy/README.md does not list: %s" % missing


def test_random_mutations_of_requests_never_disturb_the_proxy(node):
    """Seeded random damage to valid requests, sent over TCP: every answer
    is a well-formed HTTP reply with an expected status (or, for a request
    left incomplete by the client's end of input, no answer), and the proxy
    serves clients and probes as before."""
    _, proxy = node
    rng = random.Random(7)
    seeds = [b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n",
             b"POST /status HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode() +
             b"\r\nContent-Length: 4\r\n\r\nabcd",
             b"GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]
    statuses = {}
    with client(proxy) as c:
        for i in range(150):
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 6)):
                op = rng.randrange(4)
                pos = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    data[pos % len(data)] = rng.randrange(256)
                elif op == 1:
                    data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
                elif op == 2:
                    del data[pos:pos + rng.randint(1, 8)]
                else:
                    data[pos:pos] = rng.choice([b"\r\n", b":", b" ", b"\x00", b"9" * 30])
            reply = raw_exchange(proxy.admin_port, bytes(data), timeout=2, half_close=True)
            status = status_of(reply)
            assert reply == b"" or status in (200, 202, 400, 401, 404, 405, 409, 413, 503), (bytes(data), reply[:200])
            statuses[status] = statuses.get(status, 0) + 1
            if i % 50 == 0:
                assert c.call("SET", "fuzz:%d" % i, "1") == "OK"
        assert c.call("GET", "fuzz:0") == b"1"
    assert statuses.get(400, 0) > 10  # the damage reached the parser
    assert proxy.alive() and request(proxy.admin_port, "GET", "/readyz")[0] == 200
