"""Driver of tests/valkey-suite.sh: Valkey's Tcl units direct and through the
proxy, compared by test name.  The unit lists and the skip table live in the
shell script (passed in the environment); see its header for the options.

Per unit and mode a fresh upstream server is started with the integration
harness (tests/integration/harness.py: persistence off, disk-less syncs
without delay), plus the debug/protected-config/module commands Valkey's own
external-server CI enables.  The Tcl suite runs as
  tclsh tests/test_helper.tcl --host 127.0.0.1 --port P --single unit/X
        --durable --clients 1 --timeout T [--tags ...] [--skiptest ...]
from the source tree's top (runtest's working directory).  --durable makes a
test that raises count as [err] instead of aborting the unit.
"""
import argparse
import collections
import os
import pty
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SERVER_ARGS = ["--enable-debug-command", "yes", "--enable-protected-configs", "yes",
               "--enable-module-command", "yes"]

OK_RE = re.compile(r"^\[ok\]: (.*) \(\d+ ms\)\s*$")
ERR_RE = re.compile(r"^\[err\]: (.*?)(?: in (?:\./)?tests/\S+\.tcl)?\s*$")
TIMEOUT_RE = re.compile(r"^\[TIMEOUT\]: (.*?)\s*$")
HUNG_RE = re.compile(r"^\S+ => \(IN PROGRESS\) (.*?)\s*$")  # runtest's clients state report
EXC_RE = re.compile(r"^\[exception\]: (.*)$")
SKIP_RE = re.compile(r"^\[(skip|ignore)\]: (.*)$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_skips(text):
    """[(unit, name, reason)] from the script's table (unit | name | reason)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise SystemExit("valkey-suite: skip table line %d is not 'unit | test name | reason': %r"
                             % (n, line))
        out.append(tuple(parts))
    return out


def skip_matches(pattern, name):
    if pattern.startswith("/"):
        return re.search(pattern[1:], name) is not None
    return pattern == name


class Result:
    """What one run of a unit printed: names of passed and failed tests."""

    def __init__(self):
        self.ok = collections.Counter()
        self.err = collections.Counter()
        self.problems = []  # exception / timeout / exit lines, in order
        self.seconds = 0.0
        self.exit = None

    def n_ok(self):
        return sum(self.ok.values())

    def n_err(self):
        return sum(self.err.values())


def parse_line(line, res):
    line = ANSI_RE.sub("", line.rstrip("\n"))
    m = OK_RE.match(line)
    if m:
        res.ok[m.group(1)] += 1
        return "ok", m.group(1)
    m = ERR_RE.match(line)
    if m:
        res.err[m.group(1)] += 1
        return "err", m.group(1)
    m = TIMEOUT_RE.match(line)
    if m:
        res.problems.append("runtest: no test finished for --hang-timeout seconds")
        return "timeout", m.group(1)
    m = HUNG_RE.match(line)
    if m:
        res.err[m.group(1)] += 1
        res.problems.append("hung in: %s" % m.group(1))
        return "err", m.group(1) + " (hung)"
    m = EXC_RE.match(line)
    if m:
        res.problems.append(line)
        return "exception", m.group(1)
    return None, None


def run_tcl(args, opts, unit, port, skips, out_path, baseport):
    """Runs one unit against host:port; returns a Result.  baseport: the
    test server listens on a free port p in [baseport-32, baseport) with
    p+10000 free too (two runs at once would collide on the default)."""
    res = Result()
    cmd = ["tclsh", os.path.join(opts.tests, "test_helper.tcl"),
           "--host", "127.0.0.1", "--port", str(port), "--single", "unit/" + unit,
           "--baseport", str(baseport),
           "--durable", "--clients", "1", "--timeout", str(opts.hang_timeout)]
    if opts.tags:
        cmd += ["--tags", opts.tags]
    for name in skips:
        cmd += ["--skiptest", name]
    env = dict(os.environ, TERM="dumb")
    start = time.monotonic()
    # Tcl buffers its stdout fully on a pipe: a pty gives one line at a
    # time (progress as it happens, and the last lines of a hung unit).
    master, slave = pty.openpty()
    with open(out_path, "w") as out:
        out.write("# %s\n" % " ".join(cmd))
        out.flush()
        proc = subprocess.Popen(cmd, cwd=os.path.dirname(opts.tests), stdout=slave,
                                stderr=slave, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        os.close(slave)
        timed_out = threading.Event()

        def kill_on_deadline():
            if proc.poll() is None:
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        timer = threading.Timer(opts.unit_timeout, kill_on_deadline)
        timer.start()
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the pty is gone
                    chunk = b""
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    out.write(line + "\n")
                    kind, name = parse_line(line, res)
                    if kind == "err" or kind == "exception":
                        say("    %s [%s]: %s" % (args, kind, name))
                    elif kind == "ok" and opts.verbose:
                        say("    %s [ok]: %s" % (args, name))
                out.flush()
            if pending:
                out.write(pending.decode("utf-8", "replace") + "\n")
            proc.wait()
        finally:
            timer.cancel()
            os.close(master)
            # The test clients are children of test_helper: end the group.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.wait()
    res.exit = proc.returncode
    res.seconds = time.monotonic() - start
    if timed_out.is_set():
        res.problems.append("unit killed after --unit-timeout %ds" % opts.unit_timeout)
    elif res.exit != 0 and not res.err and not res.problems:
        res.problems.append("runtest exited with %s and reported no failed test (see %s)"
                            % (res.exit, out_path))
    return res


def port_busy(out_path):
    """Whether runtest gave up because its test-server port was taken."""
    with open(out_path, errors="replace") as f:
        text = f.read()
    return "couldn't open socket: address already in use" in text or "Can't find a non busy port" in text


def work_tree(tests, results, externalize):
    """A copy of the Valkey tests/ dir under results (runtest writes into
    tests/tmp; two runs at once must not share it), the rest of the source
    tree linked beside it.  For each unit in externalize, its first
    start_server block loses the external:skip tag (the block needs one
    server; later blocks that need more keep it)."""
    tree = os.path.join(results, "valkey-tree")
    if os.path.exists(tree):
        shutil.rmtree(tree)
    os.makedirs(tree)
    shutil.copytree(tests, os.path.join(tree, "tests"), symlinks=True,
                    ignore=shutil.ignore_patterns("tmp"))
    os.makedirs(os.path.join(tree, "tests", "tmp"))
    top = os.path.dirname(tests)
    for entry in os.listdir(top):
        if entry != "tests":
            os.symlink(os.path.join(top, entry), os.path.join(tree, entry))
    for unit in externalize:
        path = os.path.join(tree, "tests", "unit", unit + ".tcl")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            lines = f.readlines()
        for i, line in enumerate(lines):
            if line.startswith("start_server"):
                if "external:skip" in line:
                    lines[i] = line.replace(" external:skip", "").replace("external:skip ", "")
                    say("valkey-suite: %s: its first block runs against the external server "
                        "(external:skip dropped in the copy)" % unit)
                break
        with open(path, "w") as f:
            f.writelines(lines)
    return os.path.join(tree, "tests")


def run_unit(opts, harness, unit, mode, skips, unit_dir):
    os.makedirs(unit_dir, exist_ok=True)
    server = proxy = None
    problems = []
    try:
        server = harness.Server(unit_dir, extra_args=SERVER_ARGS, name="server-" + mode)
        port = server.port
        if mode == "proxy":
            # Valkey's tests read the replication stream through SYNC
            # (attach_to_replication_stream); the proxy refuses SYNC unless
            # allowed, so allow it here: the suite checks transparency, and
            # the raw pipe is part of what the proxy forwards.
            proxy = harness.Proxy(unit_dir, server.port, durability="always",
                                  config_text="durability:\n  allow_replica_sync: true\n")
            port = proxy.port
        out_path = os.path.join(unit_dir, mode + ".out")
        for attempt in range(3):
            # Below the ephemeral port range (32768+), with room for +10000.
            res = run_tcl(mode, opts, unit, port, skips if mode == "proxy" else [],
                          out_path, random.randrange(12000, 22700))
            if res.n_ok() or res.n_err() or not port_busy(out_path):
                break
            say("    %s: runtest's own port was busy; again with another --baseport" % mode)
        if proxy is not None and not proxy.alive():
            res.problems.append("the proxy exited with %s (log %s)"
                                % (proxy.proc.returncode, proxy.log_path))
        if not server.alive():
            res.problems.append("the server exited with %s (log %s)"
                                % (server.proc.returncode, server.log_path))
        return res
    except Exception as e:  # noqa: BLE001 - one unit's setup failure is reported, not fatal
        res = Result()
        res.problems.append("setup failed: %s" % str(e).splitlines()[0])
        problems.append(str(e))
        return res
    finally:
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.stop()


def unit_dir_of(results, unit):
    return os.path.join(results, unit.replace("/", "_"))


def compare(direct, proxied, unit, skips):
    """Names passing direct that did not pass as often through the proxy,
    split into (failed, never ran, skipped by the table or --skiptest)."""
    failed, not_run, skipped = [], [], []
    for name, n in sorted(direct.ok.items()):
        if proxied.ok[name] >= n:
            continue
        entry = [s for s in skips if skip_matches(s[1], name)]
        if entry:
            skipped.append((name, entry[0][2]))
        elif proxied.err[name]:
            failed.append(name)
        else:
            not_run.append(name)
    return failed, not_run, skipped


def on_sigterm(signum, frame):
    raise SystemExit("valkey-suite: signal %d: stopping (servers and proxies are stopped)" % signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    ap = argparse.ArgumentParser(prog="tests/valkey-suite.sh")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--server", default=os.environ.get("DP_SERVER_BIN") or "valkey-server")
    ap.add_argument("--tests")
    ap.add_argument("--proxy", default=os.environ.get("DP_BINARY"))
    ap.add_argument("--units")
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--unit-timeout", type=int, default=600)
    ap.add_argument("--hang-timeout", type=int, default=None,
                    help="runtest --timeout: seconds without a test finishing before runtest "
                         "reports the running test as [TIMEOUT] and ends the unit "
                         "(default 120, 60 with --short)")
    ap.add_argument("--results")
    ap.add_argument("--tags", default="-slow")
    ap.add_argument("--modes", default="direct,proxy")
    ap.add_argument("--if-present", action="store_true",
                    help="exit 0 (and say so) when the server or its tests dir is missing")
    ap.add_argument("--skiptest", action="append", default=[], metavar="NAME",
                    help="skip this test (exact name or /regexp) through the proxy in every unit, "
                         "for investigating what a failure hides; never counts as passing")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()
    if opts.hang_timeout is None:
        opts.hang_timeout = 60 if opts.short else 120

    def missing(msg):
        say("valkey-suite: " + msg)
        sys.exit(0 if opts.if_present else 2)

    proxy_bin = opts.proxy or os.path.join(opts.repo, "build", "durable-proxy")
    modes = [m for m in opts.modes.split(",") if m]
    if not set(modes) <= {"direct", "proxy"} or not modes:
        raise SystemExit("valkey-suite: --modes takes direct,proxy (got %r)" % opts.modes)
    if "proxy" in modes and not os.access(proxy_bin, os.X_OK):
        raise SystemExit("valkey-suite: proxy binary %s missing (build it, or --proxy / DP_BINARY)"
                         % proxy_bin)
    os.environ["DP_SERVER_BIN"] = opts.server
    os.environ["DP_BINARY"] = proxy_bin
    sys.path.insert(0, os.path.join(opts.repo, "tests", "integration"))
    import harness  # noqa: E402 - reads DP_SERVER_BIN / DP_BINARY at import

    try:
        kind, version = harness.server_version(opts.server)
    except (OSError, RuntimeError) as e:
        missing("server %s unusable: %s" % (opts.server, e))
    if opts.tests is None:
        cache = os.environ.get("DP_CACHE_DIR") or os.path.expanduser("~/.cache/durable-proxy")
        opts.tests = os.path.join(cache, "%s-%s" % (kind, version), "source", "tests")
    opts.tests = os.path.abspath(opts.tests)
    if not os.path.isfile(os.path.join(opts.tests, "test_helper.tcl")):
        missing("no Valkey tests dir at %s (no test_helper.tcl) for %s %s: pass --tests DIR "
                "(deploy/setup-valkey.sh fetches it)" % (opts.tests, kind, version))

    units_text = opts.units or (os.environ["DP_VALKEY_SUITE_SHORT"] if opts.short
                                else os.environ["DP_VALKEY_SUITE_FULL"])
    units = [u for u in units_text.split(",") if u]
    for u in units:
        if not os.path.isfile(os.path.join(opts.tests, "unit", u + ".tcl")):
            raise SystemExit("valkey-suite: unit %s not in %s/unit" % (u, opts.tests))
    skips = parse_skips(os.environ.get("DP_VALKEY_SUITE_SKIPS", ""))
    results = opts.results or tempfile.mkdtemp(prefix="valkey-suite-")
    os.makedirs(results, exist_ok=True)
    source_tests = opts.tests
    opts.tests = work_tree(source_tests, results,
                           [u for u in os.environ.get("DP_VALKEY_SUITE_EXTERNALIZE", "").split(",") if u])
    say("valkey-suite: %s %s (%s), tests %s, proxy %s, %d units, tags %r, results in %s"
        % (kind, version, opts.server, source_tests, proxy_bin, len(units), opts.tags, results))
    say("valkey-suite: running a copy of %s in %s" % (source_tests, opts.tests))

    lines = []
    failing = 0
    t0 = time.monotonic()
    header = "%-18s %14s %14s  %s" % ("unit", "direct ok/err", "proxy ok/err", "pass direct, fail proxy")
    for i, unit in enumerate(units, 1):
        unit_skips = [s for s in skips if s[0] == unit] + \
            [(unit, name, "--skiptest on the command line") for name in opts.skiptest]
        res = {}
        for mode in modes:
            say("[%d/%d] %s %s ..." % (i, len(units), unit, mode))
            r = run_unit(opts, harness, unit, mode, [s[1] for s in unit_skips],
                         unit_dir_of(results, unit))
            res[mode] = r
            say("[%d/%d] %s %s: %d ok, %d err, %.0fs%s"
                % (i, len(units), unit, mode, r.n_ok(), r.n_err(), r.seconds,
                   "".join("\n      ! " + p for p in r.problems)))
        d, p = res.get("direct"), res.get("proxy")
        col = lambda r: "%d/%d" % (r.n_ok(), r.n_err()) if r else "-"  # noqa: E731
        failed, not_run, skipped = compare(d, p, unit, unit_skips) if d and p else ([], [], [])
        failing += len(failed) + len(not_run) + \
            sum(1 for _, why in skipped if why.startswith("--skiptest"))
        shown = failed + (["%d not run (listed in %s)" % (len(not_run), unit_dir_of(results, unit))]
                          if not_run else [])
        if failed or not_run:
            with open(os.path.join(unit_dir_of(results, unit), "regressions.txt"), "w") as f:
                f.write("".join("err: %s\n" % n for n in failed))
                f.write("".join("not run: %s\n" % n for n in not_run))
        line = "%-18s %14s %14s  %s" % (unit, col(d), col(p), "; ".join(shown) or "-")
        for name, reason in skipped:
            line += "\n%-18s %29s  skipped by name: %s (%s)" % ("", "", name, reason)
        for r, mode in ((d, "direct"), (p, "proxy")):
            for prob in (r.problems if r else []):
                line += "\n%-18s %29s  %s: %s" % ("", "", mode, prob)
        lines.append(line)
        say(line)

    summary = "\n".join(["%s %s, tags %r, %.0fs" % (kind, version, opts.tags, time.monotonic() - t0),
                         header] + lines)
    with open(os.path.join(results, "summary.txt"), "w") as f:
        f.write(summary + "\n")
    print(summary)
    if failing:
        print("%d test(s) pass direct but not through the proxy (logs in %s)" % (failing, results))
        sys.exit(1)


if __name__ == "__main__":
    main()
