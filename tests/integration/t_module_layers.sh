#!/bin/bash
# t_module_layers: the module map of docs/architecture.md holds. Every
# #include "DIR/..." of a file under src/ (and apps/) names a module its own
# module may use; the first line of the map lists them. A new edge either
# belongs to the design (change the map and this table together) or is a
# layering mistake (e.g. core using net, a relay module including cli/).
. "$(dirname "$0")/lib.sh"

# module: the modules it may include, besides itself
declare -A may=(
    [core]=""
    [proto]="core"
    [net]="core proto"
    [attest]="core"
    [field]="core"
    [dir]="core net"
    [router]="core proto net dir"
    [pool]="core proto net dir"
    [broker]="core proto net attest"
    [relay]="core proto net attest dir router"
    [http]="core proto net field"
    [cli]="core proto net attest field dir router pool relay broker http"
    [apps]="core proto net attest pool"
)

cd "$ROOT"
bad=0
checked=0
while IFS= read -r f; do
    case $f in
    src/*) mod=${f#src/}; mod=${mod%%/*} ;;
    apps/*) mod=apps ;;
    esac
    [ -n "${may[$mod]+set}" ] || { echo "FAIL: $f: module '$mod' is not on the map"; bad=1; continue; }
    while IFS= read -r dep; do
        [ "$dep" = "$mod" ] && continue
        case " ${may[$mod]} " in
        *" $dep "*) ;;
        *) echo "FAIL: $f includes $dep/: $mod may use only: ${may[$mod]:-nothing}"; bad=1 ;;
        esac
    done < <(sed -n 's|^#include "\([a-z_]*\)/.*|\1|p' "$f" | sort -u)
    checked=$((checked + 1))
done < <(git ls-files 'src/*.[ch]' 'apps/*.[ch]')
[ "$checked" -gt 50 ] || fail "only $checked files checked"
[ "$bad" = 0 ] || fail "the module map is broken (docs/architecture.md, Module map)"
log "$checked files keep to the module map"
