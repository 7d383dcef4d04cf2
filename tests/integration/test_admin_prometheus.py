"""A real Prometheus server (Debian's `prometheus` package) scrapes the
proxy's /metrics on loopback every second; the test then asks Prometheus,
through its HTTP API, for metrics the proxy exposed and checks them against
what the proxy itself reports.  promtool checks the exposition text."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import harness
from admin_util import request, status_json

pytestmark = pytest.mark.proxy_only

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    upstream = harness.Server(tmp, name="upstream")
    proxy = harness.Proxy(tmp, upstream.port, "always")
    yield tmp, upstream, proxy
    proxy.stop()
    upstream.stop()


def write_some(proxy, n):
    with harness.RespConn(proxy.addr) as c:
        for i in range(n):
            assert c.call("SET", "prom:%d" % i, "v" * 64) == "OK"
        assert c.call("GET", "prom:0") == b"v" * 64


def test_promtool_accepts_the_exposition(node):
    if not PROMTOOL:
        pytest.skip("promtool not installed (Debian package prometheus; deploy/setup-debian.sh installs it)")
    _, _, proxy = node
    write_some(proxy, 10)
    status, headers, body = request(proxy.admin_port, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, "promtool check metrics:\n" + res.stdout + res.stderr
    # promtool can fail: a counter without _total is refused.
    bad = "# HELP durable_proxy_x Bad.\n# TYPE durable_proxy_x counter\ndurable_proxy_x 1\n"
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=bad, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode != 0


class Prometheus(harness._Process):
    name = "prometheus"

    def __init__(self, tmpdir, target_port):
        super().__init__()
        self.port = harness.free_port()
        workdir = os.path.join(str(tmpdir), "prometheus-%d" % self.port)
        os.makedirs(workdir)
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: durable-proxy\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.log_path = os.path.join(workdir, "prometheus.log")
        args = [PROMETHEUS, "--config.file=" + config,
                "--storage.tsdb.path=" + os.path.join(workdir, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--log.level=warn"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir)
        log.close()
        harness.LIVE.append(self)
        harness.wait_until(lambda: not self.alive() or self._ready(), 30,
                           "prometheus to be ready on %d" % self.port, interval=0.1)
        if not self.alive():
            raise RuntimeError("prometheus exited:\n" + self.describe())

    def _ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.port, path, urllib.parse.urlencode(params))
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        """{frozenset(labels without __name__/job/instance): float} of an instant query."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        out = {}
        for r in data["result"]:
            labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
            out[frozenset(labels.items())] = float(r["value"][1])
        return out


def test_prometheus_scrapes_the_proxy_and_answers_queries(node):
    if not PROMETHEUS:
        pytest.skip("prometheus not installed (Debian package prometheus; deploy/setup-debian.sh installs it)")
    tmp, _, proxy = node
    write_some(proxy, 50)
    fsynced_now = status_json(proxy.admin_port)["offsets"]["fsynced"]
    assert fsynced_now > 50 * 64
    prom = Prometheus(tmp, proxy.admin_port)
    try:
        # A scrape after the writes: the fsynced offset Prometheus stored has
        # reached what /status said once the writes were acknowledged.
        def scraped():
            v = prom.query("durable_proxy_offset_fsynced_bytes").get(frozenset())
            return v is not None and v >= fsynced_now
        harness.wait_until(scraped, 20, "Prometheus to store durable_proxy_offset_fsynced_bytes >= %d"
                           % fsynced_now, interval=0.2)
        assert prom.query('up{job="durable-proxy"}') == {frozenset(): 1.0}
        targets = prom.api("targets")["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
        assert targets[0]["lastError"] == ""
        # Labelled counters and histograms arrive with their labels.
        writes = prom.query("durable_proxy_commands_total")
        assert writes[frozenset({("class", "write")})] >= 50
        holds = prom.query('durable_proxy_hold_seconds_count{kind="write"}')
        assert holds[frozenset({("kind", "write")})] >= 50
        buckets = prom.query('durable_proxy_fsync_seconds_bucket{le="+Inf"}')
        assert buckets[frozenset({("le", "+Inf")})] >= 1
        # PromQL over the histogram: a median commit time that is a real duration.
        p50 = prom.query("histogram_quantile(0.5, durable_proxy_fsync_seconds_bucket)")
        assert 0 < p50[frozenset()] < 10
        # Gauges agree with the proxy's own view.
        assert prom.query("durable_proxy_ready") == {frozenset(): 1.0}
        assert prom.query("durable_proxy_clients_connected")[frozenset()] >= 0
        received = prom.query("durable_proxy_offset_received_bytes")[frozenset()]
        assert received >= fsynced_now
        # Every family the proxy exposes has the durable_proxy_ prefix.
        names = prom.api("label/__name__/values", **{"match[]": '{job="durable-proxy"}'})
        ours = [n for n in names if not n.startswith(("up", "scrape_"))]
        assert ours and all(n.startswith("durable_proxy_") for n in ours), ours
    finally:
        prom.stop()
