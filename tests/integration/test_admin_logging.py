"""The proxy's own messages: JSON lines to a file that SIGHUP reopens
(logrotate renames, then signals), a start-up line with the version and the
effective config, levels, text format, and the upstream password never in
any of it."""
import json
import os
import re
import signal
import subprocess

import pytest

import harness

pytestmark = pytest.mark.proxy_only

PASSWORD = "pw-Lg42-never-logged"
LEVELS = {"debug", "info", "warn", "error"}


def json_lines(path):
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n"), "last line of %s is not complete" % path
    lines = []
    for raw in text.splitlines():
        doc = json.loads(raw)  # every line is one JSON object
        assert set(doc) == {"ts", "level", "component", "msg"}, doc
        assert doc["level"] in LEVELS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["ts"]), doc["ts"]
        lines.append(doc)
    return lines, text


def test_json_lines_startup_config_sighup_reopen_and_no_password(tmp_path):
    upstream = harness.Server(tmp_path, ["--requirepass", PASSWORD], name="upstream")
    msgs = os.path.join(str(tmp_path), "messages.log")
    config = ("upstream:\n  password_env: DP_TEST_UPSTREAM_PASSWORD\n"
              "logging:\n  level: debug\n  format: json\n  file: %s\n" % msgs)
    proxy = harness.Proxy(tmp_path, upstream.port, "always", config_text=config,
                          env={"DP_TEST_UPSTREAM_PASSWORD": PASSWORD})
    try:
        with harness.RespConn(proxy.addr) as c:
            assert c.call("AUTH", PASSWORD) == "OK"
            assert c.call("SET", "k", PASSWORD) == "OK"  # the password as data, too
            assert isinstance(c.call("AUTH", "wrong-" + PASSWORD), harness.Error)
        lines, text = json_lines(msgs)
        first = lines[0]
        version = subprocess.run([harness.DP_BINARY, "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[-1]
        assert first["level"] == "info" and first["component"] == "proxy"
        assert ("durable-proxy %s starting" % version) in first["msg"]
        # The effective config: every section, the values in force, the
        # secret only as "set".
        cfg = first["msg"].split("effective config: ", 1)[1]
        for item in ("listen.address=127.0.0.1:%d" % proxy.port,
                     "upstream.address=127.0.0.1:%d" % upstream.port,
                     "durability.mode=always", "logging.format=json", "logging.level=debug",
                     "upstream.password_env=DP_TEST_UPSTREAM_PASSWORD", "upstream.password=set",
                     "admin.token=none", "checkpoint.interval=", "shutdown.timeout="):
            assert item in cfg, item
        assert any("replication stream flowing" in l["msg"] for l in lines)

        # logrotate: rename, then SIGHUP; new lines go to a new file.
        rotated = msgs + ".1"
        os.rename(msgs, rotated)
        proxy.signal(signal.SIGHUP)
        harness.wait_until(lambda: os.path.exists(msgs), 5, "SIGHUP to create a new %s" % msgs)
        harness.wait_until(lambda: "log output reopened" in open(msgs).read(), 5,
                           "the reopen message in the new file")
        with harness.RespConn(proxy.addr) as c:  # a protocol error is logged at debug level
            c.send(b"*1\r\n$x\r\n")
            assert isinstance(c.read_frame()[1], harness.Error)
        harness.wait_until(lambda: "protocol error" in open(msgs).read(), 5,
                           "the protocol error logged in the new file")
        new_lines, new_text = json_lines(msgs)
        assert any(l["level"] == "debug" and "protocol error" in l["msg"] for l in new_lines)
        _, old_text = json_lines(rotated)
        assert "protocol error" not in old_text and "log output reopened" not in old_text
        assert proxy.alive()
        all_text = old_text + new_text + open(proxy.log_path, errors="replace").read()
        assert PASSWORD not in all_text
    finally:
        proxy.stop()
        upstream.stop()
    # The shutdown lines went to the new file too, as JSON.
    lines, text = json_lines(msgs)
    assert PASSWORD not in text
    assert any("SIGTERM" in l["msg"] for l in lines)


def test_text_format_and_level_filter(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = harness.Proxy(tmp_path, upstream.port, "off",
                          config_text="logging:\n  level: warn\n  format: text\n")
    try:
        upstream.stop()  # the control link warns that it retries
        harness.wait_until(lambda: "[control]" in open(proxy.log_path).read(), 10,
                           "a warning about the upstream")
    finally:
        proxy.stop()
    with open(proxy.log_path) as f:
        lines = [l for l in f.read().splitlines() if l]
    line_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) \[[a-z_]+\] .+$")
    for l in lines:
        assert line_re.match(l), l
    levels = {line_re.match(l).group(1) for l in lines}
    assert "warn" in levels
    assert levels <= {"warn", "error"}, "level warn let through: %s" % levels
