#!/usr/bin/env python3
"""k8s_check.py RENDERED OUTDIR: the objects `kubectl kustomize
deploy/kubernetes` renders fit the airlock configs their ConfigMaps carry
(t_kustomize.sh). Writes each ConfigMap's file to OUTDIR/<name>.<ext>
(airlock-router.yaml, airlock-node.yaml, redis-sentinel.conf) and prints
every mismatch; exit status 1 when there is one."""

import os
import re
import sys

import yaml

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def port_of(endpoint):
    """The port of a tcp:HOST:PORT endpoint."""
    m = re.fullmatch(r"tcp:.*:(\d+)", endpoint)
    return int(m.group(1)) if m else None


def generated(name, objs):
    """The ConfigMap kustomize generated from NAME (its name gets a hash)."""
    found = [o for o in objs if o["kind"] == "ConfigMap" and re.fullmatch(name + r"-[a-z0-9]{10}", o["metadata"]["name"])]
    check(len(found) == 1, f"one ConfigMap {name}-<hash> expected, found {len(found)}")
    return found[0] if found else None


def workload(kind, name, objs):
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    check(len(found) == 1, f"no {kind} {name}")
    return found[0]["spec"]["template"]["spec"] if found else {}


def container_port(container, name):
    for p in container.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    errors.append(f"container {container['name']} has no port {name}")
    return None


def probes_on_metrics(what, container, metrics_port):
    check(container_port(container, "metrics") == metrics_port,
          f"{what}: container port metrics is not the config's metrics port {metrics_port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") == "metrics",
              f"{what}: {probe} is not GET {path} on the metrics port: {get}")


def mounted(spec, container, path):
    """The volume of CONTAINER that holds PATH (longest mount prefix)."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    check(best is not None, f"{container['name']}: nothing mounted holds {path}")
    if best is None:
        return None
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    check(best["name"] in vols, f"{container['name']}: mount {best['name']} has no volume")
    return vols.get(best["name"])


def secret_keys(container):
    """The keys of Secret airlock-redis in CONTAINER's environment."""
    return {e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", [])
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "airlock-redis"}


def passwords(what, spec, container, conf):
    """The directory's password files: on a memory volume the init container
    fills from Secret airlock-redis (the instances reach redis and the
    sentinels: airlock check refuses a node without them)."""
    init = " ".join(" ".join(c["command"]) for c in spec.get("initContainers", []))
    for key in ("redis_password_file", "sentinel_password_file"):
        path = conf["directory"].get(key)
        check(path is not None, f"{what}: the directory has no {key}")
        if path is None:
            continue
        vol = mounted(spec, container, path)
        check(vol is not None and vol.get("emptyDir", {}).get("medium") == "Memory",
              f"{what}: {key} {path} is not on a memory volume")
        check(path in init, f"{what}: no init container writes {path}")
    check(any(v.get("secret", {}).get("secretName") == "airlock-redis" for v in spec.get("volumes", [])),
          f"{what}: no volume of Secret airlock-redis")


def main():
    rendered, outdir = sys.argv[1], sys.argv[2]
    objs = [o for o in yaml.safe_load_all(open(rendered)) if o]
    os.makedirs(outdir, exist_ok=True)
    ns = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
    check(ns == {"airlock"}, f"objects outside namespace airlock: {ns}")

    files = {}
    for name, key in (("airlock-router", "airlock.yaml"), ("airlock-node", "airlock.yaml"),
                      ("redis-sentinel", "sentinel.conf")):
        cm = generated(name, objs)
        if cm is None or key not in cm.get("data", {}):
            errors.append(f"ConfigMap {name} has no {key}")
            continue
        files[name] = cm["data"][key]
        ext = os.path.splitext(key)[1]
        with open(os.path.join(outdir, name + ext), "w") as f:
            f.write(files[name])
    if len(files) < 3:
        return
    router_conf = yaml.safe_load(files["airlock-router"])
    node_conf = yaml.safe_load(files["airlock-node"])

    # the routers
    spec = workload("Deployment", "airlock-router", objs)
    c = spec["containers"][0]
    check(c["args"][:3] == ["run", "-c", "/etc/airlock/airlock.yaml"], f"router args: {c['args']}")
    vol = mounted(spec, c, "/etc/airlock/airlock.yaml")
    check(vol is not None and vol.get("configMap", {}).get("name", "").startswith("airlock-router-"),
          "the router's /etc/airlock is not the airlock-router ConfigMap")
    tls = container_port(c, "tls")
    check(tls == port_of(router_conf["routers"][0]["listen"]),
          f"router: container port tls {tls} is not the router's listener {router_conf['routers'][0]['listen']}")
    probes_on_metrics("router", c, port_of(router_conf["metrics"]))
    check(router_conf["routers"][0].get("accept_proxy") == "v2",
          "the routers behind a load balancer must accept PROXY v2")
    svc = [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "airlock-router"]
    check(len(svc) == 1 and svc[0]["spec"]["ports"][0]["targetPort"] == "tls",
          "Service airlock-router does not target the tls port")
    passwords("router", spec, c, router_conf)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    drain = int(str(router_conf.get("drain_timeout", "30s")).rstrip("s"))
    check(grace > drain, f"router: terminationGracePeriodSeconds {grace} <= drain_timeout {drain}s")

    # the nodes
    spec = workload("DaemonSet", "airlock-node", objs)
    check(spec.get("hostNetwork") is True, "airlock-node must use the host network")
    check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet",
          "airlock-node on the host network needs dnsPolicy ClusterFirstWithHostNet for the sentinel's name")
    c = spec["containers"][0]
    probes_on_metrics("node", c, port_of(node_conf["metrics"]))
    pool = node_conf["pools"][0]
    check("@NODE_IP@" in pool["endpoint"], "the pool's endpoint does not name the node (@NODE_IP@)")
    init = " ".join(spec["initContainers"][0]["command"])
    env = [e["name"] for e in spec["initContainers"][0].get("env", [])]
    check("@NODE_IP@" in init and "NODE_IP" in env, "the init container does not put the node's address in")
    check(node_conf["directory"].get("node") == "@NODE@" and "@NODE@" in init and "NODE_NAME" in env,
          "the pools of all nodes share a name: the directory needs node: of each, put in by the init container")
    paths = [pool["dir"], "/etc/airlock/airlock.yaml", node_conf["control"].removeprefix("unix:")]
    argv = pool["command"]
    paths += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--ca"]
    paths += [pool["state"]["store"]]  # built-in provisioning's store
    for p in paths:
        mounted(spec, c, p)
    passwords("node", spec, c, node_conf)
    store = mounted(spec, c, pool["state"]["store"])
    claim = (store or {}).get("persistentVolumeClaim", {}).get("claimName")
    pvc = [o for o in objs if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == claim]
    check(len(pvc) == 1 and "ReadWriteMany" in pvc[0]["spec"]["accessModes"],
          "the store is not a ReadWriteMany claim every node mounts")
    first, last = (int(x) for x in str(pool["ports"]).split("-"))
    check(not first <= port_of(node_conf["metrics"]) <= last, "the node's metrics port is in the pool's ports")

    # the directory: sentinels and redis
    sentinel_conf = files["redis-sentinel"]
    monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", sentinel_conf, re.M)
    check(monitor is not None, "sentinel.conf has no `sentinel monitor`")
    for what, conf in (("router", router_conf), ("node", node_conf)):
        d = conf["directory"]
        check(d["backend"] == "redis", f"{what}: the directory is not redis")
        if monitor:
            check(d["sentinel_master"] == monitor.group(1),
                  f"{what}: sentinel_master {d['sentinel_master']} is not the sentinels' {monitor.group(1)}")
        for ep in d["sentinels"]:
            m = re.fullmatch(r"tcp:([a-z0-9-]+)(\.airlock\.svc\.cluster\.local)?:(\d+)", ep)
            check(m is not None, f"{what}: sentinel {ep} is not a Service of namespace airlock")
            if not m:
                continue
            svc = [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == m.group(1)]
            check(len(svc) == 1 and int(m.group(3)) in [p["port"] for p in svc[0]["spec"]["ports"]],
                  f"{what}: no Service {m.group(1)} on port {m.group(3)}")
    if monitor:
        host, port = monitor.group(2), int(monitor.group(3))
        pod, _, svcname = host.partition(".")
        sts = [o for o in objs if o["kind"] == "StatefulSet" and o["spec"].get("serviceName") == svcname]
        check(len(sts) == 1 and pod == f"{sts[0]['metadata']['name']}-0",
              f"the sentinels watch {host}, not the first pod of a StatefulSet behind Service {svcname}")
        check(int(monitor.group(4)) <= sts[0]["spec"]["replicas"] if sts else False, "quorum larger than the sentinels")
    # redis and the sentinels want the passwords
    redis = workload("StatefulSet", "redis", objs).get("containers", [{}])[0]
    check("requirepass" in " ".join(redis.get("command", [])) and "redis-password" in secret_keys(redis),
          "redis does not want the password of Secret airlock-redis")
    init = workload("StatefulSet", "redis-sentinel", objs).get("initContainers", [{}])[0]
    cmd = " ".join(init.get("command", []))
    check("requirepass" in cmd and "auth-pass" in cmd and
          secret_keys(init) == {"redis-password", "sentinel-password"},
          "the sentinels do not want a password, or do not log in to redis with its own")

    # sizes
    for o in objs:
        if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                req = c.get("resources", {}).get("requests", {})
                check("cpu" in req and "memory" in req,
                      f"{o['kind']} {o['metadata']['name']}: container {c['name']} asks for no cpu and memory")


main()
for e in errors:
    print("k8s_check:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
