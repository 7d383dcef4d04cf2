"""Process and protocol helpers for the integration tests.

Everything here talks to real processes: redis-server (stands in for
Valkey), the durable-proxy binary, redis-cli and redis-benchmark.  Every
process started here writes its output into a temp dir and is registered in
LIVE so conftest.py can print its log when a test fails and kill it at
teardown, whatever happened.
"""
import http.client
import os
import re
import signal
import socket
import subprocess
import time

REPO = os.environ.get("DP_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DP_BINARY = os.environ.get("DP_BINARY") or os.path.join(REPO, "build", "durable-proxy")
DIRECT = os.environ.get("DP_DIRECT", "0") == "1"
DURABILITY = os.environ.get("DP_IT_DURABILITY", "off")
# upstream.sharing for every proxy a test starts ("" = the proxy's default).
SHARING = os.environ.get("DP_IT_SHARING", "")
# Set by tests/run-all.sh for the sanitizer build: ASan's shadow memory and
# quarantine make resident-memory bounds meaningless there (they still hold
# in the release run).
SANITIZED = os.environ.get("DP_SANITIZED", "0") == "1"
# The upstream server binary every test starts (redis-server 7.0, or a
# valkey-server of any version: deploy/setup-valkey.sh --print lists them).
SERVER_BIN = os.environ.get("DP_SERVER_BIN") or "redis-server"
# Every deadline in the tests is multiplied by this (a busy CI machine).
TIME_SCALE = float(os.environ.get("DP_TEST_TIME_SCALE") or "1")


def scaled(seconds):
    """A deadline scaled for the machine the tests run on."""
    return seconds * TIME_SCALE


def server_version(binary=None):
    """("valkey", "9.1.2") / ("redis", "7.0.15") for a server binary."""
    binary = binary or SERVER_BIN
    out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    m = re.search(r"^(Valkey|Redis) server v=([0-9.]+)", out)
    if not m:
        raise RuntimeError("%s --version printed no version: %r" % (binary, out[:200]))
    return m.group(1).lower(), m.group(2)


def server_label(binary=None):
    name, version = server_version(binary)
    return "%s %s" % (name, version)

LIVE = []  # processes started and not yet stopped (Server / Proxy objects)


def free_port():
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.02, state=None):
    """Polls pred() until it is true.  The timeout is scaled (TIME_SCALE);
    on giving up, the error names what was awaited and, when state is given
    (a callable), the last state it saw."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            last = ""
            if state is not None:
                try:
                    last = "; last seen: %r" % (state(),)
                except Exception as e:  # noqa: BLE001 - reporting only
                    last = "; last state unreadable: %s" % e
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (timeout, what, last))
        time.sleep(interval)


def wait_stalled(read, quiet, timeout, what):
    """Waits until read() (a counter such as bytes sent) has not changed for
    `quiet` seconds: the observed event "it stopped moving"; returns the
    value.  Both deadlines are scaled."""
    quiet = scaled(quiet)
    last = [read(), time.monotonic()]

    def stalled():
        now = read()
        if now != last[0]:
            last[:] = [now, time.monotonic()]
            return False
        return time.monotonic() - last[1] >= quiet
    wait_until(stalled, timeout, what, interval=0.05, state=lambda: last[0])
    return last[0]


def readyz(admin_port, timeout=2.0):
    """The status of GET /readyz on a proxy's admin port (None: no answer
    within the scaled timeout)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=scaled(timeout))
        c.request("GET", "/readyz")
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return None


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _tail(path, limit=6000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return data[-limit:].decode("utf-8", "replace")


class _Process:
    """A child process with its output in a file; stop() is idempotent."""

    name = "process"

    def __init__(self):
        self.proc = None
        self.log_path = None

    def describe(self):
        return "%s (pid %s, log %s):\n%s" % (
            self.name, self.proc.pid if self.proc else "-", self.log_path,
            _tail(self.log_path) if self.log_path else "")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # in case a test froze it
                self.proc.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)
        return self.proc.returncode

    def rss_bytes(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS for pid %d" % self.proc.pid)


class Server(_Process):
    """The upstream server (SERVER_BIN: redis-server or valkey-server) with
    persistence off, output in tmpdir/<name>-<port>/server.log."""

    def __init__(self, tmpdir, extra_args=(), name="redis", binary=None):
        super().__init__()
        self.binary = binary or SERVER_BIN
        self.tmpdir = str(tmpdir)
        self.extra_args = list(extra_args)
        self.name = name
        self.port = None
        self.start()

    def start(self, port=None):
        for attempt in range(3):
            self.port = port or free_port()
            workdir = os.path.join(self.tmpdir, "%s-%d" % (self.name, self.port))
            os.makedirs(workdir, exist_ok=True)
            self.log_path = os.path.join(workdir, "server.log")
            args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", workdir,
                    "--daemonize", "no", "--logfile", "",
                    "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                    "--client-output-buffer-limit", "replica 0 0 0"] + self.extra_args
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            log.close()
            LIVE.append(self)
            try:
                wait_until(lambda: port_accepts(self.port) or not self.alive(), 10,
                           "%s to listen on %d" % (self.name, self.port))
            except TimeoutError:
                self.stop()
                raise
            if self.alive():
                return
            LIVE.remove(self)
            if port is not None:
                break
        raise RuntimeError("%s did not start:\n%s" % (self.binary, self.describe()))

    @property
    def addr(self):
        return ("127.0.0.1", self.port)


class Proxy(_Process):
    """durable-proxy between the tests and an upstream Server."""

    name = "durable-proxy"

    def __init__(self, tmpdir, upstream_port, durability=DURABILITY, extra_args=(),
                 wait_ready=True, config_text="{}\n", env=None, port=None, admin_port=None):
        """env: variables added to this process's environment for the proxy
        only (e.g. LD_PRELOAD of the fsync shim); port / admin_port: fixed
        ports (default: free ones)."""
        super().__init__()
        if not os.access(DP_BINARY, os.X_OK):
            raise RuntimeError("proxy binary %s missing (set DP_BINARY, or DP_DIRECT=1 "
                               "to run against redis-server directly)" % DP_BINARY)
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        workdir = os.path.join(str(tmpdir), "proxy-%d" % self.port)
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.log_dir = os.path.join(workdir, "log")
        config = os.path.join(workdir, "proxy.yaml")
        with open(config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, "proxy.log")
        self.args = [DP_BINARY, "--config", config,
                     "--listen", "127.0.0.1:%d" % self.port,
                     "--upstream", "127.0.0.1:%d" % upstream_port,
                     "--log-dir", self.log_dir,
                     "--admin", "127.0.0.1:%d" % self.admin_port,
                     "--durability", durability] + \
            (["--sharing", SHARING] if SHARING else []) + list(extra_args)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, **env) if env else None)
        log.close()
        LIVE.append(self)
        if wait_ready:
            self.wait_ready()

    def readyz(self):
        return readyz(self.admin_port)

    def admin_get(self, path):
        """(status, body text) of a GET on the admin port."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def wait_ready(self, timeout=15):
        try:
            wait_until(lambda: not self.alive() or
                       (port_accepts(self.port) and self.readyz() == 200),
                       timeout, "proxy ready (listen %d, admin /readyz %d)" %
                       (self.port, self.admin_port), interval=0.05)
        except TimeoutError as e:
            raise RuntimeError("%s\n%s" % (e, self.describe()))
        if not self.alive():
            raise RuntimeError("proxy exited with %s before ready:\n%s" %
                               (self.proc.returncode, self.describe()))

    @property
    def addr(self):
        return ("127.0.0.1", self.port)


# ---------------------------------------------------------------- RESP client

class Error(str):
    """An error reply (- or !)."""


class Simple(str):
    """A simple string reply (+)."""


class Push(list):
    """A RESP3 push frame (>)."""


class Verbatim(bytes):
    """A RESP3 verbatim string (=), kept with its 3-letter format prefix."""


class RespSet(list):
    """A RESP3 set (~), kept in server order."""


class Attribute(list):
    """A RESP3 attribute (|) as a list of pairs; precedes the reply it annotates."""


class BigNumber(int):
    """A RESP3 big number (()."""


def encode(*args):
    """A request as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Closed(Exception):
    """The peer closed the connection; .partial holds bytes of an unfinished frame."""

    def __init__(self, partial=b""):
        super().__init__("connection closed by peer (%d bytes of an unfinished frame)"
                         % len(partial))
        self.partial = partial


class RespConn:
    """A raw socket that sends exact bytes and reads whole RESP2/RESP3 frames.

    read_frame() returns (raw_bytes, value): raw is exactly what the server
    sent for that frame (attributes included), value is decoded with the
    classes above so RESP3 types stay distinguishable.
    """

    def __init__(self, addr, timeout=5.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_cmd(self, *args):
        self.sock.sendall(encode(*args))

    def call(self, *args):
        """Send one command, return the decoded value of the next frame."""
        self.send_cmd(*args)
        return self.read_frame()[1]

    def call_raw(self, *args):
        self.send_cmd(*args)
        return self.read_frame()[0]

    # -- reading
    def _fill(self, timeout):
        if self.eof:
            raise Closed(bytes(self.buf[self.pos:]))
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 20)
        if not data:
            self.eof = True
            raise Closed(bytes(self.buf[self.pos:]))
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def _line(self, timeout):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill(timeout)

    def _exact(self, n, timeout):
        while len(self.buf) - self.pos < n:
            self._fill(timeout)
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def _value(self, timeout):
        line = self._line(timeout)
        if not line:
            raise ValueError("empty line where a RESP type byte was expected")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Simple(rest.decode())
        if t == b"-":
            return Error(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"(":
            return BigNumber(int(rest))
        if t == b",":
            return float(rest)
        if t == b"#":
            return rest == b"t"
        if t == b"_":
            return None
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n + 2, timeout)[:-2]
            return {b"$": bytes, b"=": Verbatim, b"!": lambda d: Error(d.decode())}[t](data)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self._value(timeout) for _ in range(n)]
            return {b"*": list, b"~": RespSet, b">": Push}[t](items)
        if t in (b"%", b"|"):
            n = int(rest)
            pairs = [(self._value(timeout), self._value(timeout)) for _ in range(n)]
            if t == b"|":
                return Attribute(pairs)
            return dict(pairs) if all(isinstance(k, (bytes, str, int)) for k, _ in pairs) \
                else pairs
        raise ValueError("unknown RESP type byte %r in line %r" % (t, line[:80]))

    def read_frame(self, timeout=None):
        """One whole reply or push frame: (raw bytes, decoded value)."""
        timeout = self.timeout if timeout is None else timeout
        start = self.pos
        value = self._value(timeout)
        while isinstance(value, Attribute):  # the reply it annotates follows
            value = self._value(timeout)
        return bytes(self.buf[start:self.pos]), value

    def read_frames(self, n, timeout=None):
        return [self.read_frame(timeout) for _ in range(n)]

    def read_until_quiet(self, quiet=0.2):
        """Frames until nothing arrives for `quiet` seconds (or the peer closes)."""
        frames = []
        while True:
            try:
                if self.pos == len(self.buf):
                    self._fill(quiet)
                frames.append(self.read_frame())
            except (socket.timeout, Closed):
                return frames

    def read_raw(self, n, timeout=None):
        return self._exact(n, self.timeout if timeout is None else timeout)

    def read_line(self, timeout=None):
        return self._line(self.timeout if timeout is None else timeout)

    def expect_close(self, timeout=3.0):
        """Wait for EOF; returns the bytes that arrived before it."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1fs; unread: %r"
                                     % (timeout, bytes(self.buf[self.pos:])[:200]))
            try:
                self._fill(left)
            except Closed:
                break
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.eof = True
        rest = bytes(self.buf[self.pos:])
        self.pos = len(self.buf)
        return rest

    def nothing_pending(self, wait=0.2):
        """True when no byte arrives within `wait` seconds (and none is buffered)."""
        if self.pos < len(self.buf):
            return False
        try:
            self._fill(wait)
        except socket.timeout:
            return True
        except Closed:
            return True
        return False


# ------------------------------------------------------------ comparisons

_NORMALISERS = [
    (re.compile(rb"\bid=\d+"), b"id=N"),
    (re.compile(rb"\b(addr|laddr)=[0-9.:\[\]a-f]+"), rb"\1=A"),
    (re.compile(rb"\b(fd|age|idle|tot-mem|qbuf|qbuf-free|argv-mem|obl|oll|omem|"
                rb"multi-mem|rbs|rbp|redir|user)=\S+"), rb"\1=X"),
    (re.compile(rb"\b[0-9a-f]{40}\b"), b"RUNID"),
    (re.compile(rb"\b1[6-9]\d{8}(\.\d+)?\b"), b"TIME"),
    (re.compile(rb"127\.0\.0\.1:\d+"), b"127.0.0.1:P"),
]


def normalise(value):
    """Replace what legitimately differs between two servers (ids, addresses,
    run ids, timestamps) in a decoded value, recursively."""
    if isinstance(value, (bytes, Simple, Error, str)):
        was_str = isinstance(value, str)
        data = value.encode() if was_str else value
        for rx, rep in _NORMALISERS:
            data = rx.sub(rep, data)
        return data.decode() if was_str else data
    if isinstance(value, dict):
        return {k: (None if k in (b"id", "id") else normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        for i in range(len(items) - 1):  # a RESP2 HELLO reply: flat [..., "id", N, ...]
            if items[i] in (b"id", "id") and isinstance(items[i + 1], int):
                items[i + 1] = None
        return type(value)(items)
    return value


SENTINEL = b"dp-it-sentinel"


def _is_sentinel(value):
    return value == SENTINEL or (isinstance(value, list) and not isinstance(value, Push)
                                 and value == [b"pong", SENTINEL])


def exchange(addr, steps, proto=None, timeout=5.0):
    """Send each step (a list of commands: arg lists or raw bytes) pipelined,
    then PING SENTINEL, and collect every frame before the sentinel's reply
    (in RESP2 subscribed mode that reply is [pong, SENTINEL]).  Returns
    [(raw, value)...] for all steps.  A step must not end inside MULTI."""
    out = []
    with RespConn(addr, timeout=timeout) as c:
        if proto is not None:
            c.send_cmd("HELLO", str(proto))
            c.read_frame()
        for step in steps:
            c.send(b"".join(x if isinstance(x, bytes) else encode(*x) for x in step) +
                   encode("PING", SENTINEL))
            while True:
                raw, value = c.read_frame()
                if _is_sentinel(value):
                    break
                out.append((raw, value))
    return out


def compare(target, reference, steps, proto=None, exact=True):
    """Run the same steps against both addresses and assert equal replies."""
    got = exchange(target, steps, proto)
    want = exchange(reference, steps, proto)
    assert_same_replies(got, want, exact)
    return got


def assert_same_replies(got, want, exact=True):
    """got/want from exchange(); exact compares bytes, else normalised values."""
    if exact:
        g = [raw for raw, _ in got]
        w = [raw for raw, _ in want]
    else:
        g = [normalise(v) for _, v in got]
        w = [normalise(v) for _, v in want]
    assert g == w, "replies differ:\n through target: %r\n reference:      %r" % (g, w)


# ----------------------------------------------------------- client tools

def run_cli(port, args, resp3=False, stdin=None, timeout=20):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + (["-3"] if resp3 else []) + \
        list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)


def run_benchmark(port, args, timeout=120):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port)] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def client_by_name(direct_conn, name):
    """The CLIENT LIST line (as a dict) of the upstream connection named `name`."""
    listing = direct_conn.call("CLIENT", "LIST")
    for line in listing.decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        if fields.get("name") == name:
            return fields
    return None


def command_calls(direct_conn, command):
    """How many times the upstream executed `command` (INFO commandstats
    calls; a subcommand as "config|set")."""
    fields = info_fields(direct_conn, "commandstats")
    stat = fields.get("cmdstat_" + command.lower())
    if stat is None:
        return 0
    return int(dict(f.split("=", 1) for f in stat.split(","))["calls"])


def wait_executed(direct_conn, command, calls, timeout=10, what=None):
    """Waits until the upstream has executed `command` at least `calls`
    times (seen on a direct connection): orders a test's next step after it."""
    wait_until(lambda: command_calls(direct_conn, command) >= calls, timeout,
               what or "the upstream to execute %s (%d calls)" % (command, calls),
               state=lambda: command_calls(direct_conn, command))


def client_list(direct_conn):
    """The upstream's CLIENT LIST as a list of dicts."""
    listing = direct_conn.call("CLIENT", "LIST")
    return [dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            for line in bytes(listing).decode().splitlines()]


def blocked_on(direct_conn, command):
    """How many upstream clients are blocked (flag b) in `command`."""
    return sum(1 for c in client_list(direct_conn)
               if "b" in c.get("flags", "") and c.get("cmd") == command.lower())


def wait_blocked(direct_conn, command, n=1, timeout=10):
    """Waits until at least n upstream clients are blocked in `command`
    (BLPOP, XREAD...): seen on a direct connection, before the test goes on."""
    wait_until(lambda: blocked_on(direct_conn, command) >= n, timeout,
               "%d client(s) blocked in %s on the upstream" % (n, command),
               state=lambda: [(c.get("cmd"), c.get("flags")) for c in client_list(direct_conn)])


def hiredis_tool(name, tmpdir):
    """The tests/tools/<name>.cc helper: the CMake-built one when DP_BUILD_DIR
    has it, else compiled here against the system hiredis (it needs nothing
    else), so the check also runs with DP_DIRECT=1 and no build."""
    build_dir = os.environ.get("DP_BUILD_DIR")
    if build_dir:
        built = os.path.join(build_dir, "tests", name)
        if os.access(built, os.X_OK):
            return built
    src = os.path.join(REPO, "tests", "tools", name + ".cc")
    out = os.path.join(str(tmpdir), name)
    res = subprocess.run(["g++", "-std=c++20", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                          "-o", out, src, "-lhiredis"], capture_output=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("compiling %s failed:\n%s" % (src, res.stderr.decode()))
    return out


# ------------------------------------------------- durability test helpers

def preload_shim(name, tmpdir):
    """Path of lib<name>.so, an LD_PRELOAD shim of tests/tools: the
    CMake-built one (DP_BUILD_DIR, or next to DP_BINARY), else compiled
    here from tests/tools/lib<name>.c."""
    for d in (os.environ.get("DP_BUILD_DIR"), os.path.dirname(DP_BINARY)):
        if d:
            built = os.path.join(d, "tests", "lib%s.so" % name)
            if os.path.exists(built):
                return built
    src = os.path.join(REPO, "tests", "tools", "lib%s.c" % name)
    out = os.path.join(str(tmpdir), "lib%s.so" % name)
    res = subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", out, src, "-ldl", "-lpthread"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("compiling %s failed:\n%s" % (src, res.stderr.decode()))
    return out


def fsync_shim(tmpdir):
    """libfsyncshim.so (preload_shim)."""
    return preload_shim("fsyncshim", tmpdir)


class FsyncControl:
    """The shim's control directory: block()/unblock() make the proxy's
    fsync/fdatasync wait, fail() makes them return EIO."""

    def __init__(self, tmpdir, shim_path):
        self.dir = os.path.join(str(tmpdir), "fsync-control-%d" % free_port())
        os.makedirs(self.dir, exist_ok=True)
        self.env = {"LD_PRELOAD": shim_path, "DP_FSYNC_CONTROL_DIR": self.dir}

    def _touch(self, name):
        with open(os.path.join(self.dir, name), "w"):
            pass

    def _remove(self, name):
        try:
            os.unlink(os.path.join(self.dir, name))
        except FileNotFoundError:
            pass

    def block(self):
        self._touch("block")

    def unblock(self):
        self._remove("block")

    def fail(self):
        self._touch("fail")

    def clear(self):
        self._remove("block")
        self._remove("fail")


def info_fields(conn, section="durability"):
    """INFO <section> over conn as a dict of str -> str."""
    reply = conn.call("INFO", section)
    if isinstance(reply, Error):
        raise AssertionError("INFO %s answered with an error: %s" % (section, reply))
    text = bytes(reply).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


LOG_SEGMENT_HEADER = 80
LOG_FRAME_HEADER = 28
LOG_FRAME_MAGIC = 0xD17E10C5


def read_log_stream(log_dir):
    """Stream bytes of all DATA frames in the segments of log_dir, in order
    (log/FORMAT.md); returns (first offset, bytes).  CRCs are not checked:
    the log's own tests do that."""
    import struct
    names = sorted(n for n in os.listdir(log_dir) if n.endswith(".seg"))
    first = None
    out = bytearray()
    for name in names:
        with open(os.path.join(log_dir, name), "rb") as f:
            data = f.read()
        if data[:8] != b"DPLOGSEG":
            raise AssertionError("%s: no segment magic" % name)
        pos = struct.unpack_from("<I", data, 12)[0]
        while pos + LOG_FRAME_HEADER <= len(data):
            magic, ftype, off, length = struct.unpack_from("<IB3xQI", data, pos)
            if magic != LOG_FRAME_MAGIC:
                break
            payload = data[pos + LOG_FRAME_HEADER:pos + LOG_FRAME_HEADER + length]
            if ftype == 1:
                if first is None:
                    first = off
                elif off != first + len(out):
                    raise AssertionError("%s: frame at byte %d starts at offset %d, expected %d"
                                         % (name, pos, off, first + len(out)))
                out += payload
            pos += LOG_FRAME_HEADER + length
    return first, bytes(out)


def parse_stream_commands(data):
    """The replication stream as a list of commands (lists of bytes); the
    upper-cased command name comes first.  Raises on anything but complete
    RESP arrays of bulk strings (a partial command at the end is dropped)."""
    cmds = []
    pos = 0
    while pos < len(data):
        if data[pos:pos + 1] == b"\n":  # keep-alive byte
            pos += 1
            continue
        end = data.find(b"\r\n", pos)
        if end < 0 or data[pos:pos + 1] != b"*":
            if end < 0:
                break
            raise AssertionError("stream byte %d: expected '*', got %r" % (pos, data[pos:pos + 40]))
        n = int(data[pos + 1:end])
        pos = end + 2
        args = []
        for _ in range(n):
            end = data.find(b"\r\n", pos)
            if end < 0:
                return cmds
            length = int(data[pos + 1:end])
            args.append(data[end + 2:end + 2 + length])
            pos = end + 2 + length + 2
        if pos > len(data):
            break
        args[0] = args[0].upper()
        cmds.append(args)
    return cmds
