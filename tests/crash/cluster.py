"""An upstream server (redis-server or valkey-server: server_bin, default
DP_SERVER_BIN) and a durable-proxy that can be crashed and
restarted in place: same ports, same log directory.

Faults:
  kill_upstream()  kill -9, then a new empty server on the same port
                   (persistence off, so it comes back with no data);
  kill_proxy()     kill -9 the proxy, restart it on the same log;
  kill_both()      both at once;
  power_loss()     both, and the proxy's log loses what was not fsynced:
                   fsync is blocked first (LD_PRELOAD shim), the fsynced
                   offset F is read from /status, then after kill -9 the
                   last segment is cut at a random byte at or after F and
                   random garbage is written there (a torn tail).

Used by tests/integration/test_recovery_*.py and tests/crash/soak.py.
"""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402

SEGMENT_HEADER = 80
FRAME_HEADER = 28
FRAME_MAGIC = 0xD17E10C5


def kill9(proc):
    """SIGKILL a harness process and reap it (it leaves harness.LIVE)."""
    if proc.proc is not None and proc.proc.poll() is None:
        proc.proc.send_signal(signal.SIGKILL)
        proc.proc.wait()
    if proc in harness.LIVE:
        harness.LIVE.remove(proc)


def respawn_proxy(proxy, env=None, wait_ready=True, timeout=60):
    """Start the proxy again with the same arguments (ports, log dir)."""
    log = open(proxy.log_path, "ab")
    proxy.proc = subprocess.Popen(proxy.args, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, **env) if env else None)
    log.close()
    harness.LIVE.append(proxy)
    if wait_ready:
        proxy.wait_ready(timeout)


def segment_frames(path):
    """[(file position, first offset, end offset)] of the good-looking DATA
    and REPLID frames of a segment, in order (magic and chaining only)."""
    with open(path, "rb") as f:
        data = f.read()
    first = struct.unpack_from("<Q", data, 16)[0]
    pos, end, out = SEGMENT_HEADER, first, []
    while pos + FRAME_HEADER <= len(data):
        magic, ftype, off, length = struct.unpack_from("<IB3xQI", data, pos)
        if magic != FRAME_MAGIC or off != end or pos + FRAME_HEADER + length > len(data):
            break
        nxt = pos + FRAME_HEADER + length
        if ftype == 1:
            end = off + length
        out.append((nxt, off, end))
        pos = nxt
    return first, out


def tear_log(log_dir, fsynced, rng):
    """Power loss: keep stream bytes up to `fsynced`, cut the last segment at
    a random byte between there and its end of data, write garbage there.
    Returns a description of the cut."""
    names = sorted(n for n in os.listdir(log_dir) if n.endswith(".seg"))
    if not names:
        return "no segment"
    path = os.path.join(log_dir, names[-1])
    first, frames = segment_frames(path)
    lo = SEGMENT_HEADER
    for pos, _off, end in frames:
        if end <= fsynced:
            lo = pos
    hi = frames[-1][0] if frames else SEGMENT_HEADER
    if fsynced < first:
        raise AssertionError("fsynced offset %d below the last segment %s (starts at %d)"
                             % (fsynced, names[-1], first))
    cut = rng.randint(lo, max(lo, hi))
    garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
    with open(path, "r+b") as f:
        f.seek(cut)
        f.write(garbage)
    return "%s: fsynced %d at byte %d, data to byte %d, garbage (%d bytes) at byte %d" % (
        names[-1], fsynced, lo, hi, len(garbage), cut)


class Cluster:
    def __init__(self, tmpdir, config_text="{}\n", server_args=(), rng=None, server_bin=None):
        self.tmpdir = str(tmpdir)
        self.rng = rng or random.Random()
        self.server_bin = server_bin or harness.SERVER_BIN
        self.upstream = harness.Server(tmpdir, server_args, name="upstream", binary=self.server_bin)
        self.fsync = harness.FsyncControl(tmpdir, harness.fsync_shim(tmpdir))
        self.proxy = harness.Proxy(tmpdir, self.upstream.port, "always",
                                   config_text=config_text, env=self.fsync.env)
        self.events = []

    @property
    def addr(self):
        return self.proxy.addr

    def status(self):
        code, body = self.proxy.admin_get("/status")
        if code != 200 and code != 503:
            raise AssertionError("/status answered %d: %s" % (code, body))
        return json.loads(body)

    def direct(self):
        return harness.RespConn(self.upstream.addr)

    def restart_upstream(self):
        self.upstream.start(port=self.upstream.port)

    def kill_upstream(self):
        kill9(self.upstream)
        self.restart_upstream()
        self.events.append("kill -9 upstream")

    def kill_proxy(self, wait_ready=True):
        kill9(self.proxy)
        respawn_proxy(self.proxy, self.fsync.env, wait_ready)
        self.events.append("kill -9 proxy")

    def kill_both(self, wait_ready=True):
        kill9(self.proxy)
        kill9(self.upstream)
        self.restart_upstream()
        respawn_proxy(self.proxy, self.fsync.env, wait_ready)
        self.events.append("kill -9 both")

    def power_loss(self, wait_ready=True):
        self.fsync.block()
        try:
            # Let a commit that passed the shim's check finish; then nothing
            # more becomes durable and no later reply is released.
            # F must be final: an fsync that passed the shim before the
            # block can still finish (slowly on a loaded machine).
            fsynced, stable = -1, 0
            while stable < 3:
                time.sleep(0.1)
                now = self.status()["offsets"]["fsynced"]
                stable = stable + 1 if now == fsynced else 0
                fsynced = now
            kill9(self.proxy)
            kill9(self.upstream)
        finally:
            self.fsync.unblock()
        cut = tear_log(self.proxy.log_dir, fsynced, self.rng)
        self.restart_upstream()
        respawn_proxy(self.proxy, self.fsync.env, wait_ready)
        self.events.append("power loss (%s)" % cut)

    def stop(self):
        self.fsync.clear()
        self.proxy.stop()
        self.upstream.stop()
