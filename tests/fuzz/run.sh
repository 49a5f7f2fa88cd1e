#!/bin/bash
# run.sh [SECONDS] - builds each libFuzzer harness with clang and fuzzes it
# for SECONDS (default 60), starting from its committed seed corpus. New
# interesting inputs go to build-fuzz/corpus/NAME; crashes to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out"
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c17 -D_GNU_SOURCE -Isrc -Iapps/smartgrid)
declare -A srcs=(
    [endpoint]="src/net/endpoint.c src/net/addr.c"
    [proxy_v2]="src/proto/proxy_v2.c"
    [http_connect]="src/proto/http_connect.c src/net/egress.c src/net/allow.c src/net/addr.c src/core/units.c"
    [egress_rule]="src/net/egress.c src/net/allow.c src/net/addr.c src/core/units.c"
    [frame]="src/proto/frame.c"
    [dns]="src/proto/dns.c"
    [ctl]="src/proto/ctl.c"
    [kb]="src/proto/kb.c src/core/units.c"
    [sg_http]="apps/smartgrid/http.c"
    [http_msg]="src/proto/http_msg.c"
    [tls_hello]="src/proto/tls_hello.c"
    [lines]="src/proto/lines.c"
    [procstatus]="src/proto/procstatus.c"
    [attest_nitro]="src/attest/nitro.c src/attest/trust.c src/core/units.c"
    [attest_ratls]="$(echo src/attest/*.c) src/core/units.c src/core/file.c src/core/strbuf.c"
    [attest_tdx]="$(echo src/attest/*.c) src/core/units.c src/core/file.c src/core/strbuf.c"
    [field_path]="src/field/path.c src/field/json.c src/field/token.c src/field/aead.c src/field/keyset.c src/core/strbuf.c src/core/file.c"
    [field_token]="src/field/path.c src/field/json.c src/field/token.c src/field/aead.c src/field/keyset.c src/core/strbuf.c src/core/file.c"
    [field_json]="src/field/path.c src/field/json.c src/field/token.c src/field/aead.c src/field/keyset.c src/core/strbuf.c src/core/file.c"
    [config]="src/cli/config.c src/core/closest.c src/core/file.c src/cli/confmap.c src/cli/confdump.c src/core/strbuf.c src/core/units.c src/relay/conf.c src/relay/log_conf.c src/pool/conf.c src/net/endpoint.c src/net/allow.c src/net/egress.c src/proto/dns.c src/core/log.c src/net/addr.c src/router/route.c src/proto/tls_hello.c src/dir/conf.c src/pool/template.c src/broker/conf.c src/attest/policy_conf.c src/http/conf.c"
)
for name in "${!srcs[@]}"; do
    # shellcheck disable=SC2086
    clang "${flags[@]}" "tests/fuzz/fuzz_$name.c" ${srcs[$name]} -lyaml -lhttp_parser -lcbor -lcjson -lssl -lcrypto -o "$out/fuzz_$name"
    mkdir -p "$out/corpus/$name"
    echo "== fuzzing $name for ${secs}s"
    "$out/fuzz_$name" -max_total_time="$secs" -artifact_prefix="$out/$name-" \
        "$out/corpus/$name" "tests/fuzz/corpus/$name"
done
