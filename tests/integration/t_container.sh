#!/bin/bash
# t_container: scripts/container.sh builds the image of
# deploy/container/Containerfile (from scratch, around the static build) with
# podman, and it works:
#  - the image holds airlock and its example config, nothing else (no shell);
#    it runs as uid 65532, its default command is `run -c
#    /etc/airlock/airlock.yaml`;
#  - `airlock --version` and `airlock check` of the shipped config run in it;
#  - a relay in a container (host network, loopback only) carries bytes both
#    ways to a peer on this machine.
# The sandbox this runs in has hybrid cgroups (crun refuses them: runc) and
# lets a runtime set only some rlimits: the open files as they are, 4096
# processes.
. "$(dirname "$0")/lib.sh"
need podman runc socat
TAG=localhost/airlock-test:$$
NAME=airlock-test-$$
pod() { podman --runtime runc "$@"; }
RUN=(pod run --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
cleanup_container() {
    podman rm -f "$NAME" >/dev/null 2>&1 || true
    podman rmi -f "$TAG" >/dev/null 2>&1 || true
}
at_exit cleanup_container

log "build"
out=$(CONTAINER=podman "$ROOT/scripts/container.sh" "$TAG" 2>&1) || fail "container.sh: $out"
[ "$out" = "$TAG" ] || fail "container.sh printed: $out"

log "what is in it"
[ "$(podman image inspect -f '{{.Config.User}}' "$TAG")" = 65532:65532 ] || fail "user: $(podman image inspect -f '{{.Config.User}}' "$TAG")"
[ "$(podman image inspect -f '{{json .Config.Cmd}}' "$TAG")" = '["run","-c","/etc/airlock/airlock.yaml"]' ] ||
    fail "cmd: $(podman image inspect -f '{{json .Config.Cmd}}' "$TAG")"
podman create --name "$NAME" "$TAG" >/dev/null
podman export "$NAME" | tar -tf - | sed 's|/$||' | sort >"$T/files"
podman rm "$NAME" >/dev/null
# what the runtime itself adds to every container (mount points)
grep -vxE 'dev|etc|etc/(hosts|hostname|resolv.conf)|proc|run|run/\.containerenv|sys|usr|usr/bin|etc/airlock' \
    "$T/files" >"$T/ours" || true
printf '%s\n' etc/airlock/airlock.yaml usr/bin/airlock >"$T/want"
diff "$T/want" "$T/ours" >&2 || fail "the image holds more or less than airlock and its config"

log "version and check inside"
v=$("${RUN[@]}" --rm --network none "$TAG" --version) || fail "--version failed"
[[ $v == "airlock "* ]] || fail "--version: $v"
out=$("${RUN[@]}" --rm --network none "$TAG" check -c /etc/airlock/airlock.yaml 2>&1) ||
    fail "the shipped config does not pass check: $out"
log "$out"

log "a relay in a container"
read -r P Q <<<"$(free_ports 2)"
start peer socat "TCP-LISTEN:$Q,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
wait_port "$Q"
"${RUN[@]}" -d --name "$NAME" --network host "$TAG" relay "tcp:127.0.0.1:$P" "tcp:127.0.0.1:$Q" >/dev/null ||
    fail "the relay container did not start"
wait_port "$P" 30
head -c 100000 /dev/urandom >"$T/in"
socat -t 5 - "TCP:127.0.0.1:$P" <"$T/in" >"$T/out"
cmp -s "$T/in" "$T/out" || fail "bytes through the container's relay differ ($(wc -c <"$T/out") of 100000 back)"
pod stop -t 10 "$NAME" >/dev/null
[ "$(podman inspect -f '{{.State.ExitCode}}' "$NAME")" = 0 ] ||
    fail "the relay did not stop cleanly on SIGTERM: $(podman logs "$NAME" 2>&1 | tail -5)"
log "ok"
