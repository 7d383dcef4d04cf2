"""Pass-through benchmark: redis-benchmark straight at a redis-server and
through durable-proxy (durability off) in one run, plus the proxy's memory
for idle client connections.  Driven by passthrough_bench.sh (which raises
the open-file limit first); see that file for usage.

Per round and per configuration (c50 P1, c50 P16, c1 P1) the direct and the
proxied run alternate, so drifting machine load hits both alike; the report
gives the median over rounds.  redis-benchmark's latency histogram is coarse
at tens of microseconds, so the c1 latency comes from tests/tools/
latency_probe (exact per-request timing) and from redis-benchmark's own p50.
"""
import argparse
import csv
import io
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

CONFIGS = [("c50 P1", 50, 1), ("c200 P1", 200, 1), ("c50 P16", 50, 16), ("c1 P1", 1, 1)]
PATHS = ("direct", "proxy", "shared")  # shared: the proxy with upstream.sharing: auto
TESTS = ("SET", "GET")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


class Procs:
    """Processes this run started; all are stopped at exit, by pid."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, args):
        log_path = os.path.join(self.workdir, name + ".log")
        log = open(log_path, "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        p.log_path = log_path
        p.name = name
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# The upstream server binary (redis-server or valkey-server).
SERVER_BIN = os.environ.get("DP_SERVER_BIN") or "redis-server"


def start_server(procs):
    port = free_port()
    p = procs.start("server", [
        SERVER_BIN, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", procs.workdir, "--daemonize", "no", "--logfile", "",
        "--maxclients", "20000"])
    wait_until(lambda: accepts(port) or p.poll() is not None, 10, "%s on %d" % (SERVER_BIN, port))
    if p.poll() is not None:
        sys.exit("%s exited at start; see %s" % (SERVER_BIN, p.log_path))
    return p, port


def start_proxy(procs, binary, upstream_port, max_clients, sharing="off"):
    port, admin = free_port(), free_port()
    config = os.path.join(procs.workdir, "proxy-%s.yaml" % sharing)
    with open(config, "w") as f:
        f.write("listen:\n  max_clients: %d\nlogging:\n  level: info\n" % max_clients)
    p = procs.start("durable-proxy-%s" % sharing, [
        binary, "--config", config, "--listen", "127.0.0.1:%d" % port,
        "--upstream", "127.0.0.1:%d" % upstream_port, "--admin", "127.0.0.1:%d" % admin,
        "--log-dir", os.path.join(procs.workdir, "log-%s" % sharing), "--durability", "off",
        "--sharing", sharing])

    def ready():
        if p.poll() is not None:
            return True
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=0.5) as r:
                return r.status == 200 and accepts(port)
        except OSError:
            return False
    wait_until(ready, 20, "durable-proxy ready")
    if p.poll() is not None:
        sys.exit("durable-proxy exited at start (%s); see %s" % (p.returncode, p.log_path))
    return p, port


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_benchmark(port, clients, pipeline, requests):
    args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
            "-r", "100000", "-d", "64", "-n", str(requests), "-c", str(clients),
            "-P", str(pipeline), "--csv"]
    res = subprocess.run(args, capture_output=True, timeout=600)
    out, err = res.stdout.decode(), res.stderr.decode()
    if res.returncode != 0 or "rror" in out + err:
        sys.exit("redis-benchmark failed (exit %d) on port %d:\n%s%s" % (res.returncode, port, out, err))
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        rows[row["test"]] = {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"])}
    missing = [t for t in TESTS if t not in rows]
    if missing:
        sys.exit("redis-benchmark printed no %s row on port %d:\n%s" % (missing, port, out))
    return rows


def run_probe(probe, port, count):
    res = subprocess.run([probe, "127.0.0.1", str(port), str(count), "64"], capture_output=True,
                         timeout=600)
    if res.returncode != 0:
        sys.exit("latency_probe failed on port %d: %s" % (port, res.stderr.decode()))
    return {k: float(v) for k, v in (f.split("=") for f in res.stdout.decode().split())}


def find_probe(workdir):
    build = os.environ.get("DP_BUILD_DIR")
    if build and os.access(os.path.join(build, "tests", "latency_probe"), os.X_OK):
        return os.path.join(build, "tests", "latency_probe")
    src = os.path.join(REPO, "tests", "tools", "latency_probe.cc")
    out = os.path.join(workdir, "latency_probe")
    res = subprocess.run(["g++", "-std=c++20", "-O2", "-o", out, src, "-lhiredis"], capture_output=True)
    if res.returncode != 0:
        sys.exit("compiling %s failed:\n%s" % (src, res.stderr.decode()))
    return out


def idle_connections(proxy, port, count):
    """Open `count` clients, PING each (so its upstream connection exists),
    keep them idle; returns (RSS before, RSS with all open)."""
    time.sleep(0.5)
    before = rss_bytes(proxy.pid)
    socks = []
    try:
        batch = []
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            socks.append(s)
            batch.append(s)
            if len(batch) == 500 or i == count - 1:  # read the PONGs in batches
                for t in batch:
                    got = b""
                    while len(got) < 7:
                        chunk = t.recv(64)
                        if not chunk:
                            raise RuntimeError("proxy closed idle client %d: %r" % (len(socks), got))
                        got += chunk
                    if got != b"+PONG\r\n":
                        raise RuntimeError("idle client got %r instead of +PONG" % got)
                batch = []
        time.sleep(1.0)
        after = rss_bytes(proxy.pid)
    finally:
        for s in socks:
            s.close()
    return before, after


def median(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", required=True, help="durable-proxy binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100000, help="per c50 run (-n)")
    ap.add_argument("--c1-requests", type=int, default=20000, help="per c1 run (-n)")
    ap.add_argument("--idle", type=int, default=5000, help="idle client connections")
    args = ap.parse_args()

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print("machine: %d cores, load average %s; rounds %d, -n %d (c50), -n %d (c1)" %
          (os.cpu_count(), " ".join(load), args.rounds, args.requests, args.c1_requests))
    if float(load[0]) >= 1.5:
        print("warning: load average %s >= 1.5: other work shares the cores, figures will be low and noisy"
              % load[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + 1024
    print("open-file limit: %d (hard %d); this client needs about %d, the proxy %d "
          "(it raises its own limit to its hard limit)" % (soft, hard, need, 2 * args.idle + 256))
    if soft < need:
        sys.exit("open-file limit %d too low for %d idle connections: raise the hard limit "
                 "(ulimit -Hn, /etc/security/limits.conf) and run again" % (soft, args.idle))

    workdir = tempfile.mkdtemp(prefix="dp-bench-")
    procs = Procs(workdir)
    try:
        probe = find_probe(workdir)
        server, sport = start_server(procs)
        proxy, pport = start_proxy(procs, os.path.abspath(args.proxy), sport, max(10000, args.idle + 100))
        shared, shport = start_proxy(procs, os.path.abspath(args.proxy), sport, max(10000, args.idle + 100),
                                     "auto")
        with open(proxy.log_path, errors="replace") as f:
            warn = [line.strip() for line in f if "open-file limit" in line]
        print("proxy fd-limit warning: %s" % (warn[0] if warn else "none (limit sufficient)"))

        before, after = idle_connections(proxy, pport, args.idle)
        delta = after - before
        print("idle connections: %d -> proxy RSS %.1f MB -> %.1f MB, delta %.1f MB (%.0f bytes each); "
              "target <= 64 MB: %s" % (args.idle, before / 2**20, after / 2**20, delta / 2**20,
                                        delta / max(1, args.idle), "ok" if delta <= 64 * 2**20 else "MISSED"))
        wait_until(lambda: rss_bytes(proxy.pid) > 0, 1, "proxy alive")

        results = {(name, where): [] for name, _, _ in CONFIGS for where in PATHS}
        probes = {"direct": [], "proxy": []}
        pid_of = {"direct": None, "proxy": proxy.pid, "shared": shared.pid}
        port_of = {"direct": sport, "proxy": pport, "shared": shport}
        for r in range(args.rounds):
            for name, c, p in CONFIGS:
                n = args.c1_requests if c == 1 else args.requests
                order = list(PATHS[r % 3:] + PATHS[:r % 3])  # each path goes first in turn
                for where in order:
                    port = port_of[where]
                    ppid = pid_of[where]
                    before = (children_cpu(), cpu_seconds(server.pid), cpu_seconds(ppid) if ppid else 0.0)
                    row = run_benchmark(port, c, p, n)
                    after = (children_cpu(), cpu_seconds(server.pid), cpu_seconds(ppid) if ppid else 0.0)
                    # CPU microseconds per request: redis-benchmark, server, proxy
                    row["cpu_us"] = [(a - b) * 1e6 / (2 * n) for a, b in zip(after, before)]
                    results[(name, where)].append(row)
            order = [("direct", sport), ("proxy", pport)] if r % 2 == 0 else [("proxy", pport), ("direct", sport)]
            for where, port in order:
                probes[where].append(run_probe(probe, port, args.c1_requests))
            print("round %d/%d done" % (r + 1, args.rounds), flush=True)

        print()
        print("%-8s %-4s %11s %11s %11s %6s %6s %8s %8s %8s" % (
            "config", "test", "direct rps", "proxy rps", "shared rps", "p/d", "s/d", "p50 d ms", "p50 p ms",
            "p50 s ms"))
        ratios = {}
        for name, _, _ in CONFIGS:
            for t in TESTS:
                rps = {w: median([x[t]["rps"] for x in results[(name, w)]]) for w in PATHS}
                p50 = {w: median([x[t]["p50_ms"] for x in results[(name, w)]]) for w in PATHS}
                ratios[(name, t)] = rps["proxy"] / rps["direct"]
                ratios[(name, t, "shared")] = rps["shared"] / rps["direct"]
                print("%-8s %-4s %11.0f %11.0f %11.0f %6.2f %6.2f %8.3f %8.3f %8.3f" % (
                    name, t, rps["direct"], rps["proxy"], rps["shared"], rps["proxy"] / rps["direct"],
                    rps["shared"] / rps["direct"], p50["direct"], p50["proxy"], p50["shared"]))
        print()
        print("CPU per request (us; medians; SET and GET together): the 2 cores are shared by all three")
        print("processes.  proxy = sharing off (one upstream connection per client), shared = sharing auto")
        print("%-8s %-7s %10s %10s %10s %10s" % ("config", "path", "benchmark", "server", "proxy", "total"))
        for name, _, _ in CONFIGS:
            for where in PATHS:
                cpu = [median([x["cpu_us"][i] for x in results[(name, where)]]) for i in range(3)]
                if where == "direct":
                    cpu[2] = 0.0
                print("%-8s %-7s %10.1f %10.1f %10.1f %10.1f" % (name, where, cpu[0], cpu[1], cpu[2], sum(cpu)))
        print()
        pd = median([x["p50_us"] for x in probes["direct"]])
        pp = median([x["p50_us"] for x in probes["proxy"]])
        md = median([x["mean_us"] for x in probes["direct"]])
        mp = median([x["mean_us"] for x in probes["proxy"]])
        print("c1 P1 latency (latency_probe, SET/GET -d 64, median of %d rounds): p50 direct %.1f us, "
              "proxy %.1f us, overhead %.1f us; mean overhead %.1f us" % (args.rounds, pd, pp, pp - pd, mp - md))
        c1 = {t: (median([x[t]["p50_ms"] for x in results[("c1 P1", "proxy")]]) -
                  median([x[t]["p50_ms"] for x in results[("c1 P1", "direct")]])) * 1000 for t in TESTS}
        print("c1 P1 p50 overhead by redis-benchmark (coarse buckets): SET %.0f us, GET %.0f us" %
              (c1["SET"], c1["GET"]))
        print()
        verdict = []
        for name in ("c50 P1", "c50 P16"):
            worst = min(ratios[(name, t)] for t in TESTS)
            verdict.append("%s throughput ratio %.2f (target >= 0.80): %s" %
                           (name, worst, "ok" if worst >= 0.8 else "MISSED"))
        for name in ("c50 P1", "c200 P1"):
            worst = min(ratios[(name, t, "shared")] for t in TESTS)
            verdict.append("%s shared throughput ratio %.2f (target >= 0.90): %s" %
                           (name, worst, "ok" if worst >= 0.9 else "MISSED"))
        verdict.append("c1 p50 overhead %.1f us (target <= 40): %s" % (pp - pd, "ok" if pp - pd <= 40 else "MISSED"))
        verdict.append("idle %d connections %.1f MB (target <= 64 MB): %s" %
                       (args.idle, delta / 2**20, "ok" if delta <= 64 * 2**20 else "MISSED"))
        for v in verdict:
            print(v)
        if proxy.poll() is not None:
            sys.exit("durable-proxy died during the run (%s); see %s" % (proxy.returncode, proxy.log_path))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
