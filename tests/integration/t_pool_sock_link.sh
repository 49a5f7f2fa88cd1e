#!/bin/bash
# t_pool_sock_link: an instance owns the directory its socket is in, so it
# may replace that socket with a symbolic link (or a directory on its path
# with a link) to another socket: the router must never follow it and hand
# its user's bytes to whatever the link names (another instance, a service
# of the host). Instances of a pool with endpoint unix:{dir}/... :
#  - an honest instance listening on {dir}/app.sock gets the ClientHello
#    (the connect without following links still reaches a real socket);
#  - an instance whose app.sock is a link to a victim socket: the router's
#    connect fails (logged), the victim receives nothing;
#  - an instance whose {dir}/s is a link to the victim's directory, endpoint
#    unix:{dir}/s/app.sock: the same;
#  - a pool whose dir is reached through a link is refused at start.
. "$(dirname "$0")/lib.sh"
need socat python3
pool_setup
RPORT=$(free_port)
mkdir -p "$T/victim"
start victim socat -u UNIX-LISTEN:"$T/victim/app.sock",fork OPEN:"$T/victim.bytes",creat,append
wait_for unix_up "$T/victim/app.sock"

# The instance: MODE DIR, run in DIR
cat >"$T/inst.sh" <<EOF
#!/bin/sh
case \$1 in
honest) socat -u UNIX-LISTEN:"\$2/app.sock" OPEN:"$T/honest.bytes",creat,append & ;;
leaf) ln -s "$T/victim/app.sock" "\$2/app.sock" ;;
parent) ln -s "$T/victim" "\$2/s" ;;
esac
echo WAITING_LOGIN
exec sleep 600
EOF
chmod +x "$T/inst.sh"

# conf MODE ENDPOINT DIR
conf() {
    cat >"$CONF" <<EOF
log_level: debug
metrics: tcp:127.0.0.1:$MPORT
directory:
  backend: memory
pools:
  - name: sl
    command: [$T/inst.sh, $1, "{dir}"]
    endpoint: "unix:$2"
    ports: $P0-$((P0 + 9))
    dir: $3
    min_idle: 1
    max: 2
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
      logout: "^LOGOUT$"
routers:
  - name: grid
    listen: tcp:127.0.0.1:$RPORT
    directory: sl
    domain: grid.test
EOF
}

# scenario MODE ENDPOINT: an airlock with one pool of MODE instances; a
# client of mallory's goes through the router
scenario() {
    log "== $1: endpoint unix:$2"
    rm -rf "$T/inst"
    : >"$LOG"
    conf "$1" "$2" "$T/inst"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_log "$LOG" "instance=sl-1 ready"
    hold "m-$1" "$RPORT" mallory.grid.test
    wait_log "$LOG" "router assigned relay=grid .* sni=mallory.grid.test"
}

scenario honest "{dir}/app.sock"
wait_for test -s "$T/honest.bytes"
[ "$(head -c1 "$T/honest.bytes" | od -An -tx1 | tr -d ' ')" = 16 ] ||
    fail "the honest instance did not get the ClientHello"
unhold m-honest
stop_clean "$AL" al

for mode in leaf parent; do
    ep="{dir}/app.sock"
    [ "$mode" = parent ] && ep="{dir}/s/app.sock"
    scenario "$mode" "$ep"
    wait_log "$LOG" "relay=grid conn=[0-9]* connect to unix:$T/inst/sl-1/.*app.sock failed: Too many levels of symbolic links"
    wait_log "$T/m-$mode.out" '^eof$'
    [ ! -s "$T/victim.bytes" ] || fail "$mode: the victim socket got a client's bytes"
    unhold "m-$mode"
    stop_clean "$AL" al
done

log "== a pool dir reached through a link is refused"
ln -s "$T" "$T/link"
conf honest "{dir}/app.sock" "$T/link/inst"
airlock al run -c "$CONF"
wait_log "$LOG" "pool=sl: $T/link/inst: expected an absolute path without symbolic links"
stop "$LAST_PID" || true
log ok
