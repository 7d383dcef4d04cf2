"""Full-sync delay benchmark (issue 10 item 8): time from proxy start to
/readyz 200 (the first full sync) and the duration of one POST /checkpoint,
against an upstream started with the given extra arguments (e.g. none, for
Valkey's default repl-diskless-sync-delay 5, or --repl-diskless-sync-delay 0).

  /usr/bin/python3 tests/bench/sync_delay_bench.py --server valkey-server [--proxy P] [-- server args...]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def admin_call(port, method, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request(method, path, body=b"" if method == "POST" else None)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("sync_delay_bench: timed out waiting for " + what)
        time.sleep(0.01)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="valkey-server")
    ap.add_argument("--proxy", default=os.environ.get("DP_BINARY") or os.path.join(root, "build", "durable-proxy"))
    ap.add_argument("server_args", nargs="*")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sync_delay_bench.")
    up, listen, admin = free_port(), free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([a.server, "--port", str(up), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", work] + a.server_args,
                                      stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT))
        wait(lambda: socket.socket().connect_ex(("127.0.0.1", up)) == 0, 10, "the server")
        with open(os.path.join(work, "proxy.yaml"), "w") as f:
            f.write("checkpoint:\n  interval: 0s\n")
        t0 = time.monotonic()
        procs.append(subprocess.Popen([a.proxy, "--config", os.path.join(work, "proxy.yaml"),
                                       "--listen", "127.0.0.1:%d" % listen, "--upstream", "127.0.0.1:%d" % up,
                                       "--log-dir", os.path.join(work, "log"), "--admin", "127.0.0.1:%d" % admin],
                                      stdout=open(os.path.join(work, "proxy.log"), "w"), stderr=subprocess.STDOUT))

        def ready():
            try:
                return admin_call(admin, "GET", "/readyz")[0] == 200
            except OSError:
                return False
        wait(ready, 60, "/readyz")
        start = time.monotonic() - t0
        t1 = time.monotonic()
        status, body = admin_call(admin, "POST", "/checkpoint")
        if status != 202:
            raise SystemExit("sync_delay_bench: POST /checkpoint answered %d: %s" % (status, body))

        def done():
            c = json.loads(admin_call(admin, "GET", "/status")[1])["checkpointer"]
            return c["completed"] >= 1 and not c["running"]
        wait(done, 60, "the checkpoint")
        print("%s %s: start->ready %.2f s, checkpoint %.2f s"
              % (a.server, " ".join(a.server_args) or "(default config)", start, time.monotonic() - t1))
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
