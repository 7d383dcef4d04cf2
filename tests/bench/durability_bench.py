"""Driver of tests/bench/durability_bench.sh (see there for what it measures).

Every process it starts is its own child, stopped at exit whatever happens.
Results: one table per disk mode with medians over the rounds, the ratios
the issue's targets are stated in, and a PASS/MISS line per target.
"""
import argparse
import atexit
import csv
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILDREN = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit("durability_bench: timed out waiting for %s" % what)


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start(args, log, env=None):
    out = open(log, "ab")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, **env) if env else None)
    out.close()
    CHILDREN.append(p)
    return p


# port -> {"server": pid, "proxy": pid}: whose CPU a target's requests cost.
PIDS = {}


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stop_all():
    for p in CHILDREN:
        if p.poll() is None:
            p.terminate()
    for p in CHILDREN:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    CHILDREN.clear()


atexit.register(stop_all)


def shim_path(workdir):
    build = os.environ.get("DP_BUILD_DIR")
    for d in ([build] if build else []) + [os.path.dirname(ARGS.proxy)]:
        p = os.path.join(d, "tests", "libfsyncshim.so")
        if os.path.exists(p):
            return p
    out = os.path.join(workdir, "libfsyncshim.so")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", out,
                    os.path.join(ROOT, "tests", "tools", "libfsyncshim.c"), "-ldl", "-lpthread"], check=True)
    return out


# The upstream server binary (redis-server or valkey-server).
SERVER_BIN = os.environ.get("DP_SERVER_BIN") or "redis-server"


def redis_server(workdir, name, extra, env=None):
    port = free_port()
    d = os.path.join(workdir, "%s-%d" % (name, port))
    os.makedirs(d)
    args = [SERVER_BIN, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", d, "--daemonize", "no", "--logfile", "",
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--client-output-buffer-limit", "replica 0 0 0"] + extra
    p = start(args, os.path.join(d, "server.log"), env)
    wait_until(lambda: accepts(port), 10, "%s on port %d" % (name, port))
    PIDS[port] = {"server": p.pid}
    return port


def proxy(workdir, upstream_port, env=None, config="{}\n", binary=None):
    port, admin = free_port(), free_port()
    d = os.path.join(workdir, "proxy-%d" % port)
    os.makedirs(d)
    cfg = os.path.join(d, "proxy.yaml")
    with open(cfg, "w") as f:
        f.write(config)
    p = start([binary or ARGS.proxy, "--config", cfg, "--listen", "127.0.0.1:%d" % port,
               "--upstream", "127.0.0.1:%d" % upstream_port, "--log-dir", os.path.join(d, "log"),
               "--admin", "127.0.0.1:%d" % admin, "--durability", "always"],
              os.path.join(d, "proxy.log"), env)
    PIDS[port] = {"server": PIDS[upstream_port]["server"], "proxy": p.pid}

    def ready():
        try:
            return urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=0.5).status == 200
        except OSError:
            return False
    wait_until(lambda: accepts(port) and ready(), 30, "durable-proxy on port %d" % port)
    return port


def bench(port, args, timeout=600):
    """redis-benchmark --csv; returns {"rps", "p50", "p99"} of its one row."""
    res = subprocess.run(["redis-benchmark", "-p", str(port), "--csv"] + args,
                         capture_output=True, text=True, timeout=timeout)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    if res.returncode != 0 or not rows:
        raise SystemExit("durability_bench: redis-benchmark %s failed: %s %s"
                         % (" ".join(args), res.stdout[-500:], res.stderr[-500:]))
    r = rows[-1]
    n = int(args[args.index("-n") + 1])
    return {"rps": float(r["rps"]), "p50": float(r["p50_latency_ms"]), "p99": float(r["p99_latency_ms"]),
            "requests": n}


def workloads():
    n, n1, ng = ARGS.requests, ARGS.c1_requests, ARGS.get_requests
    common = ["-r", "100000", "-d", "64"]
    chosen = ARGS.workloads.split(",") if ARGS.workloads else None
    return [w for w in all_workloads(n, n1, ng, common) if chosen is None or w[0] in chosen]


def all_workloads(n, n1, ng, common):
    return [
        ("SET c50 P1", lambda p: bench(p, ["-t", "set", "-c", "50", "-P", "1", "-n", str(n)] + common)),
        ("SET c50 P16", lambda p: bench(p, ["-t", "set", "-c", "50", "-P", "16", "-n", str(n * 4)] + common)),
        ("SET c1 P1", lambda p: bench(p, ["-t", "set", "-c", "1", "-P", "1", "-n", str(n1)] + common)),
        ("GET under writes", lambda p: get_under_writes(p, ng)),
    ]


def get_under_writes(port, n):
    """valkey #4029: 8 clients SET (their own keys) in the background while
    50 clients GET keys nobody writes now."""
    writers = subprocess.Popen(["redis-benchmark", "-p", str(port), "-c", "8", "-n", "100000000",
                                "-r", "100000", "SET", "wkey:__rand_int__", "v" * 64],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    CHILDREN.append(writers)
    try:
        time.sleep(0.5)  # writers at full speed first
        return bench(port, ["-c", "50", "-n", str(n), "-r", "100000", "GET", "key:__rand_int__"])
    finally:
        writers.terminate()
        writers.wait()
        CHILDREN.remove(writers)


def run_mode(mode, workdir, shim):
    env = None
    if mode == "delay":
        env = {"LD_PRELOAD": shim, "DP_FSYNC_DELAY_US": str(ARGS.delay_us)}
    ceiling = redis_server(workdir, "ceiling", [])
    always = redis_server(workdir, "always", ["--appendonly", "yes", "--appendfsync", "always"], env)
    upstream = redis_server(workdir, "upstream", [])
    durable = proxy(workdir, upstream, env)
    targets = [("ceiling", ceiling), ("always", always), ("durable", durable)]
    if ARGS.compare_overlap:
        # The same proxy build with another log.fsync_overlap (1 = one fsync
        # at a time, the behaviour before overlapping), on its own upstream.
        targets.append((compare_name(), proxy(workdir, redis_server(workdir, "upstream2", []), env,
                                              "log:\n  fsync_overlap: %d\n" % ARGS.compare_overlap)))
    if ARGS.compare_sharing:
        # The same proxy with upstream.sharing: auto, on its own upstream.
        targets.append(("durable-shared", proxy(workdir, redis_server(workdir, "upstream3", []), env,
                                                "upstream:\n  sharing: auto\n")))
    if ARGS.baseline_proxy:
        # Another build (e.g. the previous commit) with upstream.sharing:
        # auto, on its own upstream: a change measured side by side.
        targets.append(("shared-baseline", proxy(workdir, redis_server(workdir, "upstream4", []), env,
                                                 "upstream:\n  sharing: auto\n", ARGS.baseline_proxy)))
    # Fill the keys GET reads, on every target.
    for _, p in targets:
        bench(p, ["-t", "set", "-c", "50", "-n", "100000", "-r", "100000", "-d", "64", "-P", "16"])
    results = {}  # (workload, target) -> [dict]
    for rnd in range(ARGS.rounds):
        for wname, fn in workloads():
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for tname, port in order:
                pids = PIDS[port]
                before = (children_cpu(), cpu_seconds(pids["server"]), cpu_seconds(pids.get("proxy", 0)))
                row = fn(port)
                after = (children_cpu(), cpu_seconds(pids["server"]), cpu_seconds(pids.get("proxy", 0)))
                # CPU microseconds per request: benchmark(s), server, proxy.
                row["cpu"] = [(a - b) * 1e6 / max(row["requests"], 1) for a, b in zip(after, before)]
                results.setdefault((wname, tname), []).append(row)
        print("  %s: round %d/%d done" % (mode, rnd + 1, ARGS.rounds), file=sys.stderr, flush=True)
    info = subprocess.run(["redis-cli", "-p", str(durable), "INFO", "durability"],
                          capture_output=True, text=True).stdout
    fields = dict(l.strip().split(":", 1) for l in info.splitlines() if ":" in l)
    stop_all()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99")}
           for k, v in results.items()}
    for k, v in results.items():
        med[k]["cpu"] = [statistics.median(r["cpu"][i] for r in v) for i in range(3)]
    med["proxy"] = fields
    return med


def compare_name():
    return "durable-o%d" % ARGS.compare_overlap


def report(mode, med):
    title = "local disk" if mode == "local" else "every fdatasync delayed %d us (shim)" % ARGS.delay_us
    print("\n== %s: medians of %d rounds ==" % (title, ARGS.rounds))
    print("%-17s %-14s %10s %8s %8s %26s" % ("workload", "target", "rps", "p50 ms", "p99 ms",
                                                "CPU us/req: bench srv proxy"))
    names = ["ceiling", "always", "durable"] + ([compare_name()] if ARGS.compare_overlap else []) + \
        (["durable-shared"] if ARGS.compare_sharing else []) + \
        (["shared-baseline"] if ARGS.baseline_proxy else [])
    for wname, _ in workloads():
        for tname in names:
            m = med[(wname, tname)]
            c = m["cpu"]
            print("%-17s %-14s %10.0f %8.3f %8.3f %11.1f %5.1f %5.1f" % (wname, tname, m["rps"], m["p50"], m["p99"],
                                                                    c[0], c[1], c[2]))
    if ARGS.compare_sharing:
        for wname, _ in workloads():
            d, o = med[(wname, "durable-shared")], med[(wname, "always")]
            print("%s: durable-shared / always: rps %.2fx; durable-shared / durable: rps %.2fx"
                  % (wname, d["rps"] / o["rps"], d["rps"] / med[(wname, "durable")]["rps"]))
    if ARGS.baseline_proxy and ARGS.compare_sharing:
        for wname, _ in workloads():
            d, o = med[(wname, "durable-shared")], med[(wname, "shared-baseline")]
            print("%s: durable-shared / shared-baseline: rps %.2fx, p50 %.2fx, CPU proxy %.1f / %.1f us"
                  % (wname, d["rps"] / o["rps"], d["p50"] / o["p50"] if o["p50"] else 0, d["cpu"][2], o["cpu"][2]))
    if ARGS.compare_overlap:
        for wname, _ in workloads():
            d, o = med[(wname, "durable")], med[(wname, compare_name())]
            print("%s: durable (default overlap) / %s: rps %.2fx, p50 %.2fx, p99 %.2fx"
                  % (wname, compare_name(), d["rps"] / o["rps"], d["p50"] / o["p50"] if o["p50"] else 0,
                     d["p99"] / o["p99"] if o["p99"] else 0))
    if len(workloads()) != len(all_workloads(0, 0, 0, [])):
        return  # the ratios and targets below need every workload

    def r(w, t1, t2, metric="rps"):
        return med[(w, t1)][metric] / med[(w, t2)][metric] if med[(w, t2)][metric] else float("inf")
    print("ratios: durable/always SET c50 P1 %.2fx, SET c50 P16 %.2fx, SET c1 P1 rps %.2fx, "
          "c1 p50 %.2fx; GET under writes durable/ceiling rps %.2fx, p99 %.2fx; always/ceiling GET rps %.2fx"
          % (r("SET c50 P1", "durable", "always"), r("SET c50 P16", "durable", "always"),
             r("SET c1 P1", "durable", "always"), r("SET c1 P1", "durable", "always", "p50"),
             r("GET under writes", "durable", "ceiling"), r("GET under writes", "durable", "ceiling", "p99"),
             r("GET under writes", "always", "ceiling")))
    checks = [("durable SET c50 P1 >= %.1fx always" % (1.3 if mode == "local" else 3.0),
               r("SET c50 P1", "durable", "always") >= (1.3 if mode == "local" else 3.0)),
              ("GET under writes rps >= 0.8x ceiling", r("GET under writes", "durable", "ceiling") >= 0.8),
              ("GET under writes p99 <= 2x ceiling", r("GET under writes", "durable", "ceiling", "p99") <= 2.0)]
    if mode == "local":
        checks.insert(1, ("durable c1 p50 <= 1.5x always", r("SET c1 P1", "durable", "always", "p50") <= 1.5))
    for what, ok in checks:
        print("  %s %s" % ("PASS" if ok else "MISS", what))
    f = med.get("proxy", {})
    if f.get("log_fsyncs"):
        fsyncs = int(f["log_fsyncs"])
        print("proxy log: %d fsyncs for %d stream bytes (%.0f bytes per fsync), last fsync %s us"
              % (fsyncs, int(f.get("fsynced_offset", 0)), int(f.get("fsynced_offset", 0)) / max(fsyncs, 1),
                 f.get("log_last_fsync_us", "?")))


def main():
    global ARGS
    quick = os.environ.get("DP_BENCH_QUICK") == "1"
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--rounds", type=int, default=1 if quick else 3)
    ap.add_argument("--requests", type=int, default=5000 if quick else 100000)
    ap.add_argument("--c1-requests", type=int, default=1000 if quick else 5000)
    ap.add_argument("--get-requests", type=int, default=5000 if quick else 200000)
    ap.add_argument("--modes", default="local,delay")
    ap.add_argument("--delay-us", type=int, default=2000)
    ap.add_argument("--workloads", default="",
                    help="comma-separated names (e.g. 'SET c50 P1'); default all")
    ap.add_argument("--compare-overlap", type=int, default=0,
                    help="also measure a proxy with this log.fsync_overlap (e.g. 1)")
    ap.add_argument("--compare-sharing", action="store_true",
                    help="also measure a proxy with upstream.sharing: auto")
    ap.add_argument("--baseline-proxy", default="",
                    help="also measure this proxy binary (another build) with upstream.sharing: auto")
    ARGS = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="dp-durability-bench-")
    try:
        shim = shim_path(workdir)
        print("durability_bench: proxy %s, server %s %s, load %s" % (
            ARGS.proxy, SERVER_BIN, subprocess.run([SERVER_BIN, "--version"], capture_output=True, text=True)
            .stdout.split()[2], open("/proc/loadavg").read().split()[0]))
        for mode in ARGS.modes.split(","):
            report(mode, run_mode(mode, workdir, shim))
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


ARGS = None
if __name__ == "__main__":
    main()
