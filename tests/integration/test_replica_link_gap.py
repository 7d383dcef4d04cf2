"""A stream gap on the main replica link (the first stream byte is not the
one after the log's end): the proxy must close that link through its
lifecycle (never free it inside its own callback), forget that it was
streaming, and start a new link.  A real server never sends a gap, so the
upstream here is a small fake primary: it answers `PSYNC ? -1` once with
`+CONTINUE` and a stream starting at offset 1 while the log ends at 100."""
import socket
import threading

import pytest

import harness
from checkpoint_util import proxy_config

pytestmark = pytest.mark.proxy_only

EMPTY_RDB = b"REDIS0009\xff" + b"\0" * 8
R1 = "a" * 40
R2 = "b" * 40


def bulk(text):
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class FakePrimary:
    """Answers the proxy's control link (INFO, ROLE, COMMAND refused) and its
    replica links; `history` = (replid, offset, keys) is what INFO shows."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.history = (R1, 100, 0)
        self.psyncs = []
        self.replicas = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                if not line.startswith(b"*"):
                    continue
                argv = []
                for _ in range(int(line[1:])):
                    n = int(f.readline()[1:])
                    argv.append(f.read(n + 2)[:-2].decode())
                conn.sendall(self._answer(conn, argv))
        except OSError:
            return
        finally:
            conn.close()

    def _answer(self, conn, argv):
        cmd = argv[0].upper()
        replid, offset, keys = self.history
        if cmd == "PING":
            return b"+PONG\r\n"
        if cmd == "INFO":
            section = argv[1].lower() if len(argv) > 1 else ""
            if section == "replication":
                return bulk("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:%s\r\n"
                            "master_replid2:%s\r\nmaster_repl_offset:%d\r\nsecond_repl_offset:-1\r\n"
                            % (replid, "0" * 40, offset))
            if section == "keyspace":
                return bulk("# Keyspace\r\n" + ("db0:keys=%d,expires=0,avg_ttl=0\r\n" % keys if keys else ""))
            return bulk("# Server\r\nredis_version:7.0.15\r\n")
        if cmd == "ROLE":
            return b"*3\r\n$6\r\nmaster\r\n:%d\r\n*0\r\n" % offset
        if cmd == "COMMAND":
            return b"-ERR the fake primary has no command table\r\n"
        if cmd == "REPLCONF":
            return b"" if argv[1].lower() in ("ack", "getack") else b"+OK\r\n"
        if cmd == "PSYNC":
            with self.lock:
                self.psyncs.append(" ".join(argv))
                self.replicas.append(conn)
                n = len(self.psyncs)
            if n == 2:
                # The gap: +CONTINUE to "PSYNC ? -1", stream byte 1 while the log ends at 100.
                return b"+CONTINUE %s\r\n*1\r\n$4\r\nPING\r\n" % replid.encode()
            return b"+FULLRESYNC %s %d\r\n$%d\r\n%s" % (replid.encode(), offset, len(EMPTY_RDB), EMPTY_RDB)
        return b"+OK\r\n"

    def drop_replicas(self):
        with self.lock:
            for c in self.replicas:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.replicas = []

    def close(self):
        self.closed = True
        self.sock.close()
        self.drop_replicas()


def test_a_stream_gap_restarts_the_link(tmp_path):
    fake = FakePrimary()
    proxy = None
    try:
        proxy = harness.Proxy(tmp_path, fake.port, "always", wait_ready=False,
                              config_text=proxy_config(extra="recovery:\n  on_unknown_dataset: adopt\n"))
        proxy.wait_ready(20)
        assert fake.psyncs == ["PSYNC ? -1"]
        # Another dataset appears: the proxy adopts it with PSYNC ? -1 and
        # gets the gap; then it must start a new link (the third PSYNC).
        fake.history = (R2, 500, 1)
        fake.drop_replicas()
        harness.wait_until(lambda: len(fake.psyncs) >= 3 or not proxy.alive(), 20,
                           "a new replica link after the stream gap", state=lambda: fake.psyncs)
        assert proxy.alive(), proxy.describe()
        assert fake.psyncs[1] == "PSYNC ? -1"
        proxy.wait_ready(20)
        with open(proxy.log_path) as f:
            text = f.read()
        assert "stream gap: got offset 1, log ends at 100" in text
        status = proxy.admin_get("/status")
        assert status[0] == 200 and R2 in status[1], status
    finally:
        if proxy is not None:
            proxy.stop()
        fake.close()
