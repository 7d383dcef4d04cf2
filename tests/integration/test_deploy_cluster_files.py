"""The Valkey Cluster deployment files (deploy/cluster/) are checked like the
single-node ones (test_deploy_files.py): yamllint; every proxy's flags and
embedded proxy.yaml pass `durable-proxy --check-config`; each node announces
its own proxy's port; the cluster settings are accepted by a real
valkey-server in cluster mode and take effect; the cluster-forming step
names every node at its own port.  The topology those settings give is what
test_cluster_basic.py runs (cluster_util.py sets the same announce keys)."""
import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

import harness
from test_deploy_files import (ConfServer, check_config, config_get, directives, flag, k8s_proxy_setup,
                               only)

pytestmark = pytest.mark.proxy_only

CLUSTER = os.path.join(harness.REPO, "deploy", "cluster")
COMPOSE = os.path.join(CLUSTER, "compose.yaml")
K8S = [os.path.join(CLUSTER, "statefulset.yaml")]
CLUSTER_CONF = os.path.join(CLUSTER, "valkey-cluster.conf")
VALKEY_CONF = os.path.join(harness.REPO, "deploy", "valkey.conf")


def read(path):
    with open(path) as f:
        return f.read()


def listen_port(args):
    return int(flag(args, "--listen").rsplit(":", 1)[1])


@pytest.mark.skipif(shutil.which("yamllint") is None, reason="yamllint not installed")
def test_yamllint_accepts_the_cluster_files():
    files = sorted(glob.glob(os.path.join(CLUSTER, "*.yaml")))
    assert COMPOSE in files and K8S[0] in files
    res = subprocess.run(["yamllint", "-s", "-f", "parsable", "-c",
                          os.path.join(harness.REPO, "deploy", "yamllint.yaml")] + files,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_runs_one_proxy_beside_each_node_announcing_it(tmp_path):
    compose = yaml.safe_load(read(COMPOSE))
    services = compose["services"]
    nodes = sorted(n for n in services if n.startswith("node-"))
    proxies = sorted(n for n in services if n.startswith("proxy-"))
    assert len(nodes) == 6 and len(proxies) == 6
    announced = directives(read(CLUSTER_CONF))
    for node, proxy_name in zip(nodes, proxies):
        proxy = services[proxy_name]
        assert proxy["network_mode"] == "service:" + node and node in proxy["depends_on"]
        args = proxy["command"]
        config_source = only([c for c in proxy["configs"] if c["target"] == flag(args, "--config")],
                             "config mounted at --config")["source"]
        text = compose["configs"][config_source]["content"]
        assert yaml.safe_load(text)["durability"]["allow_replica_sync"] is True
        config = tmp_path / ("%s.yaml" % proxy_name)
        config.write_text(text)
        check_config(args, str(config), env={k: str(v) for k, v in proxy["environment"].items()})
        # The node announces the port this proxy listens on, in its namespace.
        assert int(announced["cluster-announce-port"]) == listen_port(args)
        assert flag(args, "--upstream") == "127.0.0.1:6379"
        # Each node keeps nodes.conf on a volume of its own; each proxy its log.
        assert any(v.endswith(":/data") and v.split(":")[0] in compose["volumes"]
                   for v in services[node]["volumes"])
        log_volume = only([v for v in proxy["volumes"] if flag(args, "--log-dir").startswith(v.split(":")[1] + "/")],
                          "log volume")
        assert log_volume.split(":")[0] in compose["volumes"]
        # ... and its own node's /data where recovery.node_data_dir says: a
        # cluster restore writes the AOF the node loads there.
        node_data = yaml.safe_load(text)["recovery"]["node_data_dir"]
        node_volume = only([v.split(":")[0] for v in services[node]["volumes"] if v.endswith(":/data")], "node /data")
        assert "%s:%s" % (node_volume, node_data) in proxy["volumes"], proxy["volumes"]
    node_cmd = services[nodes[0]]["command"]
    mounted = {c["target"]: compose["configs"][c["source"]]["file"] for c in services[nodes[0]]["configs"]}
    assert os.path.normpath(os.path.join(CLUSTER, mounted[node_cmd[1]])) == VALKEY_CONF
    included = [node_cmd[i + 1] for i, a in enumerate(node_cmd) if a == "--include"]
    assert any(os.path.normpath(os.path.join(CLUSTER, mounted[p])) == CLUSTER_CONF for p in included)
    create = " ".join(services["create"]["command"])
    assert "--cluster create" in create and "--cluster-replicas 1" in create and ":6379" in create
    assert all(n in services["create"]["depends_on"] for n in proxies)


def cluster_server_or_skip():
    name, version = harness.server_version()
    if name != "valkey":
        pytest.skip("cluster settings: Valkey only (%s)" % harness.server_label())
    return int(version.split(".")[0])


def test_cluster_settings_are_accepted_and_take_effect(tmp_path):
    """deploy/valkey.conf + valkey-cluster.conf + acl.conf, as compose runs
    them (the bus port moved to a free one)."""
    cluster_server_or_skip()
    bus = harness.free_port()
    conf = read(VALKEY_CONF) + "\n" + re.sub(r"(?m)^cluster-port .*$", "cluster-port %d" % bus,
                                              read(CLUSTER_CONF))
    server = ConfServer(tmp_path, conf, ["--bind", "127.0.0.1", "--include",
                                         os.path.join(harness.REPO, "deploy", "acl.conf")])
    try:
        with harness.RespConn(server.addr) as c:
            assert c.call("AUTH", "default", "CHANGE-ME-default-password") == "OK"
            assert harness.info_fields(c, "cluster")["cluster_enabled"] == "1"
            settings = directives(read(CLUSTER_CONF))
            assert config_get(c, "cluster-announce-port") == settings["cluster-announce-port"]
            assert config_get(c, "cluster-port") == str(bus)
            assert config_get(c, "cluster-node-timeout") == settings["cluster-node-timeout"]
            me = bytes(c.call("CLUSTER", "NODES")).decode()
            # Clients are sent to the proxy's port; the bus keeps its own.
            assert ":%s@%d " % (settings["cluster-announce-port"], bus) in me, me
    finally:
        server.stop()


def test_kubernetes_statefulset_runs_a_proxy_sidecar_per_node(tmp_path):
    args, config, proxy, log_mount, docs, pod = k8s_proxy_setup(tmp_path, K8S)
    out = check_config(args, config)
    assert "password: set" in out and "admin token: set" in out
    with open(config) as f:
        assert yaml.safe_load(f)["durability"]["allow_replica_sync"] is True
    assert flag(args, "--log-dir").startswith(log_mount["mountPath"] + "/")
    sts = only([d for (kind, _), d in docs.items() if kind == "StatefulSet"], "StatefulSet")
    assert sts["spec"]["replicas"] == 6
    data = docs[("ConfigMap", "durable-proxy-cluster-config")]["data"]
    k8s = directives(data["valkey.conf"])
    for source in (VALKEY_CONF, CLUSTER_CONF):
        for key, value in directives(read(source)).items():
            assert k8s.get(key) == value, "ConfigMap valkey.conf: %s differs from %s" % (key, source)
    ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    assert int(k8s["cluster-announce-port"]) == ports["resp"] == listen_port(args)
    valkey = only([c for c in pod["containers"] if c["name"] == "valkey"], "valkey container")
    node_ports = {p["name"]: p["containerPort"] for p in valkey["ports"]}
    assert node_ports["bus"] == int(k8s["cluster-port"])
    assert flag(args, "--upstream") == "127.0.0.1:%d" % node_ports["node"]
    # nodes.conf lives in Valkey's dir, on a claim (it must outlive the pod).
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    data_mount = only([m for m in valkey["volumeMounts"] if m["mountPath"] == k8s["dir"]], "Valkey dir mount")
    assert data_mount["name"] in claims
    # The proxy mounts the same claim where recovery.node_data_dir says (the
    # restore AOF), and the pod's fsGroup lets both containers write it.
    with open(config) as f:
        node_data = yaml.safe_load(f)["recovery"]["node_data_dir"]
    assert {"name": data_mount["name"], "mountPath": node_data} in proxy["volumeMounts"]
    assert pod["securityContext"]["fsGroup"]
    assert k8s.get("enable-debug-command") == "local"
    job = only([d for (kind, _), d in docs.items() if kind == "Job"], "Job")
    create = " ".join(only(job["spec"]["template"]["spec"]["containers"], "create container")["command"])
    assert "--cluster create" in create and "--cluster-replicas 1" in create
    assert ":%d" % node_ports["node"] in create and "for n in 0 1 2 3 4 5" in create
    policy = only([d for (kind, _), d in docs.items() if kind == "NetworkPolicy"], "NetworkPolicy")
    open_to_all = [r for r in policy["spec"]["ingress"] if "from" not in r]
    assert {p["port"] for r in open_to_all for p in r["ports"]} == {ports["resp"], ports["admin"]}, \
        "only the proxy's ports are open to every client"
