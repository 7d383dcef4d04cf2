"""durable-proxy without --config and without ./proxy.yaml runs on the
built-in defaults plus its flags and says so; an explicit --config that is
missing is an error naming the path."""
import os
import signal
import subprocess

import pytest

import harness

pytestmark = pytest.mark.proxy_only


def test_no_config_file_runs_on_defaults_and_flags(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    port, admin = harness.free_port(), harness.free_port()
    workdir = tmp_path / "empty-cwd"
    workdir.mkdir()
    log_path = tmp_path / "proxy.out"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([harness.DP_BINARY, "--listen", "127.0.0.1:%d" % port,
                                 "--upstream", "127.0.0.1:%d" % upstream.port,
                                 "--log-dir", str(workdir / "log"), "--admin", "127.0.0.1:%d" % admin,
                                 "--durability", "off"],
                                cwd=str(workdir), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        # Ready, not only listening: it listens while it still connects to
        # the upstream (and answers -LOADING then).
        harness.wait_until(lambda: proc.poll() is not None or harness.readyz(admin) == 200, 15,
                           "the proxy to be ready (/readyz 200 on %d)" % admin,
                           state=lambda: log_path.read_text())
        assert proc.poll() is None, log_path.read_text()
        with harness.RespConn(("127.0.0.1", port)) as c:
            assert c.call("SET", "k", "v") == "OK"
            assert c.call("GET", "k") == b"v"
        text = log_path.read_text()
        assert "config: built-in defaults (no --config, no ./proxy.yaml)" in text, text
        assert not os.path.exists(workdir / "proxy.yaml")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(harness.scaled(20))
        upstream.stop()
    assert proc.returncode == 0


def test_an_explicit_config_that_is_missing_is_an_error_naming_it(tmp_path):
    missing = str(tmp_path / "nowhere.yaml")
    res = subprocess.run([harness.DP_BINARY, "--config", missing, "--check-config"],
                         capture_output=True, text=True, timeout=harness.scaled(20))
    assert res.returncode == 2
    assert missing in res.stderr and "No such file" in res.stderr, res.stderr
