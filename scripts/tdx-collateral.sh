#!/bin/bash
# tdx-collateral.sh - fetches Intel's collateral for TDX quotes into DIR, in
# the layout a policy's `collateral: DIR` (and `airlock attest verify
# --collateral DIR`) reads (docs/attestation.md, "TDX collateral"):
#
#   usage: scripts/tdx-collateral.sh [--pcs URL] [--root-crl URL]
#                                    [--ca platform,processor] DIR FMSPC...
#
#   tcb_info-FMSPC.json  GET PCS/tdx/certification/v4/tcb?fmspc=FMSPC
#   qe_identity.json     GET PCS/tdx/certification/v4/qe/identity
#   tcb_chain.pem        their TCB-Info-Issuer-Chain header, URL-decoded
#   pck_crl_CA.der       GET PCS/sgx/certification/v4/pckcrl?ca=CA&encoding=der,
#                        for each CA of --ca (the PCK CAs that issued the
#                        platforms' PCK certificates; both by default)
#   root_crl.der         the Intel SGX Root CA's CRL (--root-crl)
#
# PCS is Intel's (https://api.trustedservices.intel.com) unless --pcs names
# another (a PCCS, a mirror). The FMSPCs are those of the platforms whose
# quotes are judged (`airlock attest verify` names a missing one). Every
# file is fetched first, then each moved into DIR in one rename, so a
# reader never sees half a file; then reload airlock (`airlock ctl reload`,
# SIGHUP) to use them. Intel refreshes the collateral about monthly (each
# file's nextUpdate): run this at least as often (a timer), or every quote
# is refused once it runs out ("fetch it again").
set -euo pipefail

PCS=https://api.trustedservices.intel.com
ROOT_CRL=https://certificates.trustedservices.intel.com/IntelSGXRootCA.der
CAS=platform,processor
usage() {
    echo "usage: scripts/tdx-collateral.sh [--pcs URL] [--root-crl URL] [--ca platform,processor] DIR FMSPC..." >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --pcs) PCS=${2:?}; shift 2 ;;
    --root-crl) ROOT_CRL=${2:?}; shift 2 ;;
    --ca) CAS=${2:?}; shift 2 ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || usage
DIR=$1
shift
for f in "$@"; do
    [[ $f =~ ^[0-9a-fA-F]{12}$ ]] || { echo "tdx-collateral.sh: FMSPC $f: expected 12 hex digits" >&2; exit 2; }
done
mkdir -p "$DIR"
NEW=$(mktemp -d "$DIR/.new.XXXXXX")
trap 'rm -rf "$NEW"' EXIT

# get URL FILE: the body of a 200 answer to FILE, its headers to FILE.head
get() {
    local code
    code=$(curl -sS --max-time 30 -D "$2.head" -o "$2" -w '%{http_code}' "$1") ||
        { echo "tdx-collateral.sh: $1: no answer" >&2; exit 1; }
    [ "$code" = 200 ] || { echo "tdx-collateral.sh: $1: HTTP $code" >&2; exit 1; }
}

# chain FILE.head: the TCB-Info-Issuer-Chain header's PEM, URL-decoded
chain() {
    local v
    v=$(tr -d '\r' <"$1" | sed -n 's/^[Tt][Cc][Bb]-[Ii]nfo-[Ii]ssuer-[Cc]hain: *//p' | head -1)
    [ -n "$v" ] || { echo "tdx-collateral.sh: no TCB-Info-Issuer-Chain header" >&2; exit 1; }
    printf '%b' "${v//%/\\x}"
}

for f in "$@"; do
    f=${f,,}
    get "$PCS/tdx/certification/v4/tcb?fmspc=$f" "$NEW/tcb_info-$f.json"
done
chain "$NEW/tcb_info-${1,,}.json.head" >"$NEW/tcb_chain.pem"
get "$PCS/tdx/certification/v4/qe/identity" "$NEW/qe_identity.json"
for ca in ${CAS//,/ }; do
    [ "$ca" = platform ] || [ "$ca" = processor ] || usage
    get "$PCS/sgx/certification/v4/pckcrl?ca=$ca&encoding=der" "$NEW/pck_crl_$ca.der"
done
get "$ROOT_CRL" "$NEW/root_crl.der"
rm -f "$NEW"/*.head
for f in "$NEW"/*; do
    mv -f "$f" "$DIR/"
done
echo "tdx-collateral.sh: $DIR: $(cd "$DIR" && echo *)"
