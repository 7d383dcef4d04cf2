"""Helpers of the admin-endpoint tests (test_admin_*.py): raw HTTP over
TCP to a proxy's admin port and a small reader of the Prometheus text
format (enough for the proxy's own exposition; promtool and a real
Prometheus check the format itself in test_admin_prometheus.py)."""
import http.client
import json
import re
import socket
import time

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset of (label, value)): float} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def sample(samples, name, **labels):
    """The value of one series; KeyError naming it when absent."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError("no series %s%s in /metrics" % (name, labels or ""))
    return samples[key]


def request(port, method, path, headers=None, body=None, timeout=3):
    """(status, headers dict, body text) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def metrics(port, headers=None):
    status, _, body = request(port, "GET", "/metrics", headers)
    assert status == 200, "GET /metrics answered %d: %s" % (status, body[:200])
    return parse_metrics(body)


def status_json(port, headers=None):
    status, _, body = request(port, "GET", "/status", headers)
    assert status == 200, "GET /status answered %d: %s" % (status, body[:200])
    return json.loads(body)


def raw_exchange(port, data, timeout=3.0, chunk_delay=None, half_close=False, first_reply=True):
    """Sends raw bytes (a list of chunks, or bytes) and returns what the
    server answers: its first complete reply (first_reply), or everything
    until it closes the connection or goes quiet."""
    chunks = data if isinstance(data, list) else [data]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            for ch in chunks:
                s.sendall(ch)
                if chunk_delay:
                    time.sleep(chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking it all
        if half_close:  # no more input: an incomplete request ends here
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        reply = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not part:
                break
            reply += part
            if first_reply and b"\r\n\r\n" in reply and _complete(reply):
                break
        return reply


def _complete(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def status_of(reply):
    """Status code of a raw HTTP reply (None when there is none)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", reply)
    return int(m.group(1)) if m else None
