"""The deployment files are checked, not just written: yamllint on the
compose and Kubernetes files; every setting they (and the Dockerfile and the
systemd unit) pass to the proxy, flags and embedded proxy.yaml alike, is
accepted by `durable-proxy --check-config`; the Valkey settings (deploy/
valkey.conf, acl.conf and the Kubernetes ConfigMap) are accepted by a real
redis-server and take effect; and a proxy configured exactly as in the
Kubernetes manifest serves in front of that server with its ACL user."""
import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

import harness

pytestmark = pytest.mark.proxy_only

DEPLOY = os.path.join(harness.REPO, "deploy")
K8S_FILES = sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml")))
COMPOSE = os.path.join(DEPLOY, "compose.yaml")


def check_config(args, config_path, env=None):
    """Runs the proxy's --check-config with `args` (the deployment's flags,
    --config replaced by `config_path`); returns its output, fails on refusal."""
    args = list(args)
    if "--config" in args:
        args[args.index("--config") + 1] = config_path
    else:
        args = ["--config", config_path] + args
    res = subprocess.run([harness.DP_BINARY] + args + ["--check-config"], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, **(env or {})))
    assert res.returncode == 0, "durable-proxy %s --check-config refused:\n%s%s" % (
        " ".join(args), res.stdout, res.stderr)
    assert ": OK" in res.stdout
    return res.stdout


def flag(args, name):
    return args[args.index(name) + 1]


def k8s_docs(files=None):
    docs = []
    for path in K8S_FILES if files is None else files:
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def only(items, what):
    assert len(items) == 1, "expected one %s, found %d" % (what, len(items))
    return items[0]


# ---------------------------------------------------------------- yamllint

@pytest.mark.skipif(shutil.which("yamllint") is None, reason="yamllint not installed")
def test_yamllint_accepts_compose_and_kubernetes_files(tmp_path):
    assert K8S_FILES, "no deploy/k8s/*.yaml"
    cfg = os.path.join(DEPLOY, "yamllint.yaml")
    res = subprocess.run(["yamllint", "-s", "-f", "parsable", "-c", cfg, COMPOSE] + K8S_FILES,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    # The same settings refuse a duplicate key (the linter can fail).
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")
    res = subprocess.run(["yamllint", "-s", "-c", cfg, str(bad)], capture_output=True, text=True)
    assert res.returncode != 0 and "duplication" in res.stdout


# ---------------------------------------------------------------- compose

def test_compose_proxy_flags_and_config_are_accepted(tmp_path):
    with open(COMPOSE) as f:
        compose = yaml.safe_load(f)
    proxy = compose["services"]["proxy"]
    args = proxy["command"]
    mounted = only([c for c in proxy["configs"] if c["target"] == flag(args, "--config")],
                   "config mounted at --config")
    config = tmp_path / "proxy.yaml"
    config.write_text(compose["configs"][mounted["source"]]["content"])
    out = check_config(args, str(config), env={k: str(v) for k, v in proxy["environment"].items()})
    assert "password: set" in out and "admin token: set" in out
    # The log directory is on the named volume, the published ports are the
    # proxy's, and the upstream is Valkey's default port in the shared namespace.
    volume = only([v for v in proxy["volumes"] if v.split(":")[0] in compose["volumes"]], "log volume")
    assert flag(args, "--log-dir").startswith(volume.split(":")[1] + "/")
    assert proxy["network_mode"] == "service:valkey"
    published = {p.split(":")[-1] for p in compose["services"]["valkey"]["ports"]}
    assert published == {flag(args, "--listen").rsplit(":", 1)[1], flag(args, "--admin").rsplit(":", 1)[1]}
    assert flag(args, "--upstream") == "127.0.0.1:6379"


def directives(conf_text):
    """{directive: value text} of a redis/valkey config (comments dropped)."""
    out = {}
    for line in conf_text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key.lower()] = value.strip()
    return out


class ConfServer(harness.Server):
    """The upstream server (DP_SERVER_BIN) started from a config file (the harness's own settings
    would hide what the file sets): `conf` + `extra` lines, on a free port."""

    def __init__(self, tmpdir, conf_text, extra_args=()):
        self.conf_text = conf_text
        super().__init__(tmpdir, extra_args, name="valkey-conf")

    def start(self, port=None):
        self.port = port or harness.free_port()
        workdir = os.path.join(self.tmpdir, "conf-%d" % self.port)
        os.makedirs(workdir, exist_ok=True)
        conf = os.path.join(workdir, "valkey.conf")
        with open(conf, "w") as f:
            f.write(self.conf_text)
        self.log_path = os.path.join(workdir, "server.log")
        args = [self.binary, conf, "--port", str(self.port), "--dir", workdir,
                "--daemonize", "no", "--logfile", ""] + self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        harness.LIVE.append(self)
        harness.wait_until(lambda: harness.port_accepts(self.port) or not self.alive(), 10,
                           "%s with %s" % (self.binary, conf))
        if not self.alive():
            raise RuntimeError("%s refused the config:\n%s" % (self.binary, self.describe()))


def config_get(conn, name):
    reply = conn.call("CONFIG", "GET", name)
    assert len(reply) == 2, (name, reply)
    return reply[1].decode()


EXPECTED = {  # what deploy/valkey.conf promises, as CONFIG GET reports it
    "save": "", "appendonly": "no", "repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0",
    "repl-diskless-load": "on-empty-db", "rdb-del-sync-files": "yes", "repl-backlog-size": str(256 << 20),
    "repl-backlog-ttl": "0", "repl-timeout": "60",
}


def check_valkey_settings(conn):
    for name, want in EXPECTED.items():
        assert config_get(conn, name) == want, name
    limits = config_get(conn, "client-output-buffer-limit")  # redis 7.0 says "slave"
    assert "replica 0 0 0" in limits or "slave 0 0 0" in limits, limits


def test_valkey_conf_and_acl_conf_are_accepted_and_take_effect(tmp_path):
    with open(os.path.join(DEPLOY, "valkey.conf")) as f:
        conf = f.read()
    # As compose.yaml runs it: the file, loopback, and acl.conf included.
    with open(COMPOSE) as f:
        valkey_cmd = yaml.safe_load(f)["services"]["valkey"]["command"]
    assert "--include" in valkey_cmd and flag(valkey_cmd, "--bind") == "127.0.0.1"
    server = ConfServer(tmp_path, conf, ["--bind", "127.0.0.1",
                                         "--include", os.path.join(DEPLOY, "acl.conf")])
    try:
        with harness.RespConn(server.addr) as c:
            assert isinstance(c.call("PING"), harness.Error)  # default user has a password now
            assert c.call("AUTH", "default", "CHANGE-ME-default-password") == "OK"
            check_valkey_settings(c)
            user = c.call("ACL", "GETUSER", "durable-proxy")
            assert user is not None
            assert c.call("ACL", "DRYRUN", "durable-proxy", "PSYNC", "?", "-1") == "OK"
            assert c.call("ACL", "DRYRUN", "durable-proxy", "REPLCONF", "ACK", "0") == "OK"
            for cmd in (["ROLE"], ["INFO", "replication"], ["COMMAND"], ["REPLICAOF", "NO", "ONE"],
                        ["CONFIG", "SET", "masterauth", "x"],
                        # the cluster restore (proxy/recovery/aof_restorer.h)
                        ["DEBUG", "LOADAOF"], ["DEBUG", "CHANGE-REPL-ID"], ["CLIENT", "KILL", "TYPE", "replica"],
                        ["CLUSTER", "MYID"]):
                assert c.call("ACL", "DRYRUN", "durable-proxy", *cmd) == "OK", cmd
            # Only those DEBUG subcommands.
            assert b"no permissions" in c.call("ACL", "DRYRUN", "durable-proxy", "DEBUG", "SLEEP", "0")
            # No data access: DRYRUN answers a bulk string naming the refusal.
            assert b"no permissions" in c.call("ACL", "DRYRUN", "durable-proxy", "GET", "k")
    finally:
        server.stop()


# ---------------------------------------------------------------- Kubernetes

def k8s_proxy_setup(tmp_path, files=None):
    """(args, proxy.yaml path, container) of the proxy sidecar, with the
    Secret's files written where the manifest mounts them (under tmp_path);
    files: the manifests (default deploy/k8s/*.yaml)."""
    docs = k8s_docs(files)
    sts = only([d for (kind, _), d in docs.items() if kind == "StatefulSet"], "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    proxy = only([c for c in pod["containers"] if c["name"] == "durable-proxy"], "proxy container")
    volumes = {v["name"]: v for v in pod["volumes"]}
    args = proxy["args"]
    files = {}  # mount path in the container -> content
    for m in proxy["volumeMounts"]:
        v = volumes.get(m["name"])
        if v is None:  # a volumeClaimTemplate (the log)
            continue
        if "configMap" in v:
            data = docs[("ConfigMap", v["configMap"]["name"])]["data"]
        elif "secret" in v:
            data = docs[("Secret", v["secret"]["secretName"])]["stringData"]
        else:
            continue
        items = v.get("configMap", v.get("secret")).get("items") or [{"key": k, "path": k} for k in data]
        for it in items:
            if "subPath" in m:
                if it["path"] == m["subPath"]:
                    files[m["mountPath"]] = data[it["key"]]
            else:
                files[m["mountPath"] + "/" + it["path"]] = data[it["key"]]
    config_path = flag(args, "--config")
    assert config_path in files, "--config %s is not mounted" % config_path
    root = str(tmp_path / "root")
    for path, content in files.items():
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        with open(root + path, "w") as f:
            f.write(content)
    # Paths inside proxy.yaml point into the container: point them into root.
    text = re.sub(r"(_file:\s*)(/\S+)", lambda m: m.group(1) + root + m.group(2), files[config_path])
    with open(root + config_path, "w") as f:
        f.write(text)
    claims = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])]
    # The claim mounted where --log-dir points (a cluster sidecar also mounts its node's claim).
    log_mount = only([m for m in proxy["volumeMounts"] if m["name"] in claims and
                      flag(args, "--log-dir").startswith(m["mountPath"] + "/")], "log volume mount")
    return args, root + config_path, proxy, log_mount, docs, pod


def test_kubernetes_proxy_flags_config_and_probes_are_accepted(tmp_path):
    args, config, proxy, log_mount, _, _ = k8s_proxy_setup(tmp_path)
    out = check_config(args, config)
    assert "password: set" in out and "admin token: set" in out
    assert flag(args, "--log-dir").startswith(log_mount["mountPath"] + "/")
    ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    assert str(ports["admin"]) == flag(args, "--admin").rsplit(":", 1)[1]
    assert str(ports["resp"]) == flag(args, "--listen").rsplit(":", 1)[1]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}


def test_kubernetes_valkey_settings_and_acl_user_serve_the_proxy(tmp_path):
    """Valkey from the ConfigMap's valkey.conf and the Secret's users.acl,
    the proxy from the manifest's args and proxy.yaml (addresses moved to
    free loopback ports): the proxy's ACL user is enough for it to start,
    take its first checkpoint and acknowledge writes."""
    args, config, _, _, docs, pod = k8s_proxy_setup(tmp_path)
    data = docs[("ConfigMap", "durable-proxy-config")]["data"]
    acl = docs[("Secret", "durable-proxy-secrets")]["stringData"]["users.acl"]
    acl_path = tmp_path / "users.acl"
    acl_path.write_text(acl)
    # The ConfigMap carries deploy/valkey.conf's settings.
    with open(os.path.join(DEPLOY, "valkey.conf")) as f:
        documented = directives(f.read())
    k8s = directives(data["valkey.conf"])
    for key, value in documented.items():
        assert k8s.get(key) == value, "ConfigMap valkey.conf: %s differs from deploy/valkey.conf" % key
    conf = re.sub(r"(?m)^aclfile .*$", "aclfile " + str(acl_path), data["valkey.conf"])
    conf = re.sub(r"(?m)^dir .*$", "dir " + str(tmp_path), conf)  # the pod's scratch volume
    server = ConfServer(tmp_path, conf)
    try:
        with harness.RespConn(server.addr) as c:
            assert c.call("AUTH", "default", "CHANGE-ME-default-password") == "OK"
            check_valkey_settings(c)
        flags = list(args)
        flags[flags.index("--config") + 1] = config
        for name, value in (("--upstream", "127.0.0.1:%d" % server.port),):
            flags[flags.index(name) + 1] = value
        for name in ("--listen", "--admin", "--log-dir"):  # the harness sets these
            i = flags.index(name)
            del flags[i:i + 2]
        del flags[flags.index("--config"):flags.index("--config") + 2]
        with open(config) as f:
            proxy = harness.Proxy(tmp_path, server.port, "always", config_text=f.read(),
                                  extra_args=flags)
        try:
            with harness.RespConn(proxy.addr) as c:
                assert c.call("AUTH", "default", "CHANGE-ME-default-password") == "OK"
                assert c.call("SET", "k8s", "ok") == "OK"
                assert c.call("GET", "k8s") == b"ok"
            # Acknowledged means logged through the durable-proxy user's replica link.
            info = harness.RespConn(proxy.addr)
            assert info.call("AUTH", "default", "CHANGE-ME-default-password") == "OK"
            fields = harness.info_fields(info)
            info.close()
            assert int(fields["fsynced_offset"]) > 0 and fields["replica_link"] == "streaming"
        finally:
            proxy.stop()
    finally:
        server.stop()
    assert pod["terminationGracePeriodSeconds"] > 10  # above shutdown.timeout


# ---------------------------------------------------------------- Dockerfile, systemd

def dockerfile_instruction(name):
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    return [l.split(None, 1)[1] for l in text.splitlines() if l.split(None, 1)[:1] == [name]]


def test_dockerfile_command_is_accepted_with_the_shipped_proxy_yaml():
    cmd = json.loads(only(dockerfile_instruction("CMD"), "CMD"))
    entry = json.loads(only(dockerfile_instruction("ENTRYPOINT"), "ENTRYPOINT"))
    assert entry == ["/usr/local/bin/durable-proxy"]
    copies = [c for c in dockerfile_instruction("COPY") if c.endswith(" " + flag(cmd, "--config"))]
    assert copies and copies[0].split()[-2].endswith("/proxy.yaml")  # the repository's proxy.yaml
    check_config(cmd, os.path.join(harness.REPO, "proxy.yaml"))
    exposed = set(only(dockerfile_instruction("EXPOSE"), "EXPOSE").split())
    assert exposed == {flag(cmd, "--listen").rsplit(":", 1)[1], flag(cmd, "--admin").rsplit(":", 1)[1]}
    assert "/dev/tcp/127.0.0.1/%s" % flag(cmd, "--admin").rsplit(":", 1)[1] in \
        only(dockerfile_instruction("HEALTHCHECK"), "HEALTHCHECK")
    bases = dockerfile_instruction("FROM")
    assert len(bases) == 2 and all(b.startswith("debian:bookworm") for b in bases)


def unit_values(key):
    with open(os.path.join(DEPLOY, "durable-proxy.service")) as f:
        return [l.split("=", 1)[1] for l in f.read().splitlines() if l.startswith(key + "=")]


def test_systemd_unit_commands_are_accepted_and_the_unit_verifies(tmp_path):
    for key in ("ExecStart", "ExecStartPre"):
        argv = only(unit_values(key), key).split()
        assert argv[0] == "/usr/local/bin/durable-proxy"
        check_config([a for a in argv[1:] if a != "--check-config"], os.path.join(harness.REPO, "proxy.yaml"))
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: unit syntax not verified")
    with open(os.path.join(DEPLOY, "durable-proxy.service")) as f:
        unit = f.read().replace("/usr/local/bin/durable-proxy", harness.DP_BINARY)
    path = tmp_path / "durable-proxy.service"
    path.write_text(unit)
    res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stdout + res.stderr
    res = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(path)],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", res.stdout)
    if m:  # systemd >= 252
        assert float(m.group(1)) <= 2.0, res.stdout[-2000:]
