#!/bin/bash
# t_kustomize: deploy/kubernetes renders (`kubectl kustomize`) into objects
# that fit the airlock configs they carry:
#  - each generated ConfigMap holds its config file as it is, and each
#    airlock config passes `airlock check` (its paths pointed into the test);
#  - tools/k8s_check.py: the containers' ports are the configs' listeners,
#    the probes ask /healthz and /readyz on the metrics port, the volumes
#    hold every path the node's config uses, the directory's sentinels are a
#    Service of the kustomization on its port, the sentinel's master name and
#    its redis are the config's, every container asks for resources;
#  - the router's config runs: with its sentinel and redis names pointed at a
#    redis and a redis-sentinel on loopback that want passwords (as the
#    base's do: Secret airlock-redis), /readyz (the readiness probe)
#    answers ready and /healthz (the liveness probe) ok.
# No cluster runs here: the objects are checked, not applied (docs/kubernetes.md).
. "$(dirname "$0")/lib.sh"
need kubectl python3 redis-server curl openssl
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml not installed (scripts/deps.sh)"
K=$ROOT/deploy/kubernetes

log "render"
kubectl kustomize "$K" >"$T/rendered.yaml" 2>"$T/kustomize.err" || {
    cat "$T/kustomize.err" >&2
    fail "kubectl kustomize failed"
}
log "$(grep -c '^kind:' "$T/rendered.yaml") objects"

log "the objects against the configs"
python3 "$ROOT/tests/tools/k8s_check.py" "$T/rendered.yaml" "$T/cm" || fail "the objects do not fit the configs"
for f in router node; do
    cmp -s "$T/cm/airlock-$f.yaml" "$K/config/$f.yaml" || fail "ConfigMap airlock-$f is not config/$f.yaml"
done

log "airlock check of each config"
BIN=$(dirname "$AIRLOCK")
mkdir -p "$T/var/lib/airlock/instances" "$T/var/lib/airlock/store" "$T/etc/grid" "$T/run" "$T/secrets"
RPW=redis-$RANDOM$RANDOM SPW=sentinel-$RANDOM$RANDOM
(umask 077 && echo "$RPW" >"$T/secrets/redis.pw" && echo "$SPW" >"$T/secrets/sentinel.pw")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=grid-ca -days 1 \
    -keyout "$T/etc/grid/ca.key" -out "$T/etc/grid/ca.pem" 2>/dev/null
for f in router node; do
    sed -e "s|@NODE_IP@|127.0.0.1|" -e "s|@NODE@|$(printf node-1 | sha256sum | cut -c1-12)|" -e "s|/var/lib/airlock/|$T/var/lib/airlock/|g" \
        -e "s|/etc/airlock/|$T/etc/|g" -e "s|/run/airlock/|$T/run/|g" -e "s|/run/secrets/airlock/|$T/secrets/|g" \
        -e "s|/usr/bin/smartgrid-|$BIN/smartgrid-|g" "$T/cm/airlock-$f.yaml" >"$T/$f.yaml"
    out=$("$AIRLOCK" check -c "$T/$f.yaml" 2>&1) || fail "$f: $out"
    log "$out"
done

log "the router's config serves its probes"
read -r RP SP TP MP <<<"$(free_ports 4)"
start redis redis-server --port "$RP" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
    --requirepass "$RPW"
wait_log "$T/redis.log" 'Ready to accept connections' 10 "$LAST_PID"
sed -e "s/^port .*/port $SP/" -e "s/redis-0.redis 6379/127.0.0.1 $RP/" \
    -e '/resolve-hostnames\|announce-hostnames/d' "$T/cm/redis-sentinel.conf" >"$T/sentinel.conf"
# what the sentinels' init container adds
printf 'bind 127.0.0.1\nrequirepass %s\nsentinel sentinel-pass %s\nsentinel auth-pass airlock %s\n' \
    "$SPW" "$SPW" "$RPW" >>"$T/sentinel.conf"
start sentinel redis-server "$T/sentinel.conf" --sentinel
wait_log "$T/sentinel.log" '\+monitor master airlock' 10 "$LAST_PID"
sed -e "s|tcp:redis-sentinel.airlock.svc.cluster.local:26379|tcp:127.0.0.1:$SP|" \
    -e "s|tcp:0.0.0.0:8443|tcp:127.0.0.1:$TP|" -e "s|tcp:0.0.0.0:9464|tcp:127.0.0.1:$MP|" "$T/router.yaml" >"$T/router-lo.yaml"
airlock_up al run -c "$T/router-lo.yaml"
AL=$LAST_PID
probe() { [ "$(curl -s "http://127.0.0.1:$MP/$1")" = "$2" ]; }
wait_for probe readyz ready || fail "readyz: $(curl -s "http://127.0.0.1:$MP/readyz")"
probe healthz ok || fail "healthz: $(curl -s "http://127.0.0.1:$MP/healthz")"
stop_clean "$AL" al
log "ok"
