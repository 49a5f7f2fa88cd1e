#!/bin/bash
# t_deb_package: `dpkg-buildpackage -b` builds the packages airlock and
# airlock-smartgrid from a copy of the tree; lintian finds nothing (the
# overrides say why for what is left); the packages, unpacked with dpkg-deb
# -x (never installed here), hold the binaries, the man pages (each renders
# without a warning), the systemd unit (systemd-analyze verify accepts it;
# Type=notify, reload by SIGHUP, RuntimeDirectory, sandboxing), the example
# config (a conffile that `airlock check` accepts) and bash completion.
. "$(dirname "$0")/lib.sh"

need dpkg-buildpackage dh lintian dpkg-deb man
[ -d "$ROOT/debian" ] || fail "no debian/ in $ROOT"

log "copy of the tree"
SRC=$T/pkg/airlock
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    # what git tracks and what it would (new files), not build directories
    git -C "$ROOT" ls-files -co --exclude-standard -z | (cd "$ROOT" && tar --null -T - -cf -) |
        tar -C "$SRC" -xf -
else
    tar -C "$ROOT" --exclude='./build*' -cf - . | tar -C "$SRC" -xf -
fi

log "dpkg-buildpackage -b"
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
    timeout 600 dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1 || {
    tail -40 "$T/build.log" >&2
    fail "dpkg-buildpackage failed"
}
VER=$(cd "$SRC" && dpkg-parsechangelog -S Version)
ARCH=$(dpkg --print-architecture)
CHANGES=$T/pkg/airlock_${VER}_$ARCH.changes
for p in airlock airlock-smartgrid; do
    [ -f "$T/pkg/${p}_${VER}_$ARCH.deb" ] || fail "no package $p"
done

log "lintian"
# info tags count too (each one left is overridden in debian/*.lintian-overrides)
lintian -I --fail-on error,warning,info "$CHANGES" >"$T/lintian.log" 2>&1 || {
    cat "$T/lintian.log" >&2
    fail "lintian found problems"
}
grep -E '^[EWI]: ' "$T/lintian.log" && fail "lintian tags"

log "contents"
X=$T/root
for p in airlock airlock-smartgrid; do
    dpkg-deb -x "$T/pkg/${p}_${VER}_$ARCH.deb" "$X"
    dpkg-deb -c "$T/pkg/${p}_${VER}_$ARCH.deb" | awk '{ print $6 }' >"$T/$p.files"
done
for f in ./usr/bin/airlock ./lib/systemd/system/airlock.service ./etc/airlock/airlock.yaml \
    ./usr/share/man/man8/airlock.8.gz ./usr/share/man/man8/airlock-ctl.8.gz \
    ./usr/share/man/man5/airlock.yaml.5.gz ./usr/share/bash-completion/completions/airlock \
    ./usr/share/doc/airlock/copyright; do
    grep -qx "$f" "$T/airlock.files" || fail "airlock lacks $f"
done
for f in server provision state load; do
    grep -qx "./usr/bin/smartgrid-$f" "$T/airlock-smartgrid.files" ||
        fail "airlock-smartgrid lacks smartgrid-$f"
    grep -q "smartgrid-$f" "$T/airlock.files" && fail "smartgrid-$f is in airlock too"
done
dpkg-deb -f "$T/pkg/airlock-smartgrid_${VER}_$ARCH.deb" Depends | has "airlock (= $VER)" ||
    fail "airlock-smartgrid does not depend on its airlock"
dpkg-deb --ctrl-tarfile "$T/pkg/airlock_${VER}_$ARCH.deb" | tar -xOf - ./conffiles |
    has -x /etc/airlock/airlock.yaml || fail "the example config is not a conffile"

log "the binary and the example config"
"$X/usr/bin/airlock" --version | has "^airlock $VER " || fail "packaged --version: $("$X/usr/bin/airlock" --version)"
"$X/usr/bin/airlock" check -c "$X/etc/airlock/airlock.yaml" >"$T/check.log" 2>&1 || {
    cat "$T/check.log" >&2
    fail "airlock check rejects the shipped example config"
}
# and with its commented-out blocks (directory, control socket) taken in
sed -E 's/^#(directory:|  backend:|control:)/\1/' "$X/etc/airlock/airlock.yaml" >"$T/full.yaml"
grep -q '^control: ' "$T/full.yaml" || fail "the example config has no control socket to take in"
"$X/usr/bin/airlock" check -c "$T/full.yaml" >"$T/check.log" 2>&1 || {
    cat "$T/check.log" >&2
    fail "airlock check rejects the example config with its optional blocks"
}

log "the systemd unit"
U=$X/lib/systemd/system/airlock.service
# shellcheck disable=SC2016 # $MAINPID is for systemd to expand
for line in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' RuntimeDirectory=airlock \
    ProtectSystem=strict NoNewPrivileges=yes \
    'ExecStart=/usr/bin/airlock run -c /etc/airlock/airlock.yaml'; do
    grep -qxF "$line" "$U" || fail "the unit lacks $line"
done
if command -v systemd-analyze >/dev/null; then
    # the unpacked binary stands in for /usr/bin/airlock; man pages are checked below
    sed "s|/usr/bin/airlock|$X/usr/bin/airlock|g" "$U" >"$T/airlock.service"
    systemd-analyze verify --man=no "$T/airlock.service" >"$T/verify.log" 2>&1 || {
        cat "$T/verify.log" >&2
        fail "systemd-analyze verify rejects the unit"
    }
    [ -s "$T/verify.log" ] && { cat "$T/verify.log" >&2; fail "systemd-analyze verify warns"; }
else
    log "no systemd-analyze: the unit is not verified"
fi

log "man pages"
for page in "$X"/usr/share/man/man*/*.gz; do
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 "$page" >"$T/page.txt" 2>"$T/man.err" ||
        fail "man -l $page failed"
    [ -s "$T/man.err" ] && { cat "$T/man.err" >&2; fail "man -l $(basename "$page") warns"; }
    # bold is overstruck (X backspace X) when man writes to a file
    sed 's/.\x08//g' "$T/page.txt" | has '^NAME' || fail "$(basename "$page") has no NAME section"
done

log "bash completion"
# completes: completion FILE WORD...: the candidates for the last word
completes() {
    local file=$1
    shift
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _airlock; echo "${COMPREPLY[*]}"' \
        _ "$file" "$@"
}
C=$X/usr/share/bash-completion/completions/airlock
[ "$(completes "$C" airlock ch)" = check ] || fail "completion of 'airlock ch': $(completes "$C" airlock ch)"
[[ " $(completes "$C" airlock ctl "") " == *" sessions "* ]] || fail "no completion of ctl commands"
[ "$(completes "$C" airlock attest fe)" = fetch-secret ] || fail "completion of 'airlock attest fe': $(completes "$C" airlock attest fe)"
[ "$(completes "$C" airlock field re)" = rewrap ] || fail "completion of 'airlock field re': $(completes "$C" airlock field re)"
[[ " $(completes "$C" airlock relay --max-c) " == *" --max-connections "* ]] ||
    fail "no completion of relay options"
echo "PASS t_deb_package"
