#!/usr/bin/python3
"""Save the raw bytes of a server's COMMAND reply, for the command-table tests.

Usage: capture_command.py OUT_FILE [--port P] [--server redis-server] [--resp3]
With --resp3 the connection first switches with HELLO 3 (whose reply is not
saved), so key specs arrive as RESP3 maps.  Without --port it starts a throw-away server (no persistence) on a free port,
captures, and stops it.  With --port it asks the server already there.
"""
import argparse
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_reply(sock):
    """Reads until the buffer holds exactly one complete reply."""
    buf = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("server closed the connection mid-reply "
                               "after %d bytes" % len(buf))
        buf += chunk
        end = reply_end(buf, 0)
        if end is not None:
            if end != len(buf):
                raise RuntimeError("trailing bytes after the COMMAND reply")
            return buf


def reply_end(buf, pos):
    """End offset of the RESP2/RESP3 reply starting at pos, or None if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    kind, line = buf[pos:pos + 1], buf[pos + 1:nl]
    pos = nl + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return pos
    if kind in (b"$", b"!", b"="):
        n = int(line)
        if n < 0:
            return pos
        return pos + n + 2 if len(buf) >= pos + n + 2 else None
    if kind in (b"*", b"~", b">", b"%"):
        count = max(int(line), 0) * (2 if kind == b"%" else 1)
        for _ in range(count):
            pos = reply_end(buf, pos)
            if pos is None:
                return None
        return pos
    raise RuntimeError("unexpected RESP type %r at offset %d" % (kind, pos))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--port", type=int)
    ap.add_argument("--server", default="redis-server")
    ap.add_argument("--resp3", action="store_true")
    args = ap.parse_args()
    proc = None
    port = args.port
    if port is None:
        port = free_port()
        proc = subprocess.Popen([args.server, "--port", str(port), "--save", "",
                                 "--appendonly", "no"],
                                stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        with sock:
            if args.resp3:
                sock.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
                read_reply(sock)
            sock.sendall(b"*1\r\n$7\r\nCOMMAND\r\n")
            data = read_reply(sock)
        with open(args.out, "wb") as f:
            f.write(data)
        print("%s: %d bytes" % (args.out, len(data)), file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
