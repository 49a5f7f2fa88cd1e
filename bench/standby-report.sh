#!/bin/bash
# standby-report.sh DIR USERS SESSION MIN_IDLE [CONFIG] - the tables and plots of
# bench/standby.sh from DIR/results.csv and DIR/ondemand.csv: PNG and SVG
# plots in DIR, and the markdown tables between the "results" markers of
# docs/evaluation.md (the rest of that file is written by hand); for another
# CONFIG than native (standby.sh's: qemu for --launcher qemu, LAUNCHER-min_idleK
# with --min-idle K, ...-steady with --steady), between the "results-CONFIG" ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$1 USERS=$2 SESSION=$3 MIN_IDLE=$4 CONFIG=${5:-native}
MARKER=results MEM_OF="smartgrid-server process"
[ "$CONFIG" = native ] || MARKER=results-$CONFIG
[ "${CONFIG#qemu}" = "$CONFIG" ] || MEM_OF="qemu process (a guest with its server)"
R=$DIR/results.csv OD=$DIR/ondemand.csv L=$DIR/logins.csv DOC=$ROOT/docs/evaluation.md

# one row per run (system, active, write, interval) with its memory and LOGIN p99
# joined with the same run of the other system
pairs() {
    awk -F, 'NR > 1 && $5 == "LOGIN" {
        k = $2 "," $3 "," $4; mem[$1, k] = $11; inst[$1, k] = $13; cpu[$1, k] = $14
        p50[$1, k] = $8; p99[$1, k] = $10; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END {
        for (i = 0; i < n; i++) {
            k = order[i]
            printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", k, mem["trivial", k], mem["standby", k],
                inst["trivial", k], inst["standby", k], cpu["trivial", k], cpu["standby", k],
                p50["trivial", k], p50["standby", k], p99["trivial", k], p99["standby", k]
        }
    }' "$R"
}

# pooled: "active,p50,p95,p99,n" of Trivial then of Standby, per active ratio
# and for all customer runs ("all"), from every LOGIN in logins.csv
pooled() {
    local a
    for a in $(awk -F, 'NR > 1 && $4 != "meter" { print $2 }' "$L" | sort -rnu) all; do
        for sys in trivial standby; do
            awk -F, -v s=$sys -v a=$a 'NR > 1 && $1 == s && $4 != "meter" && (a == "all" || $2 == a) { print $5 }' "$L" |
                sort -g | awk '{ v[NR] = $1 }
                    function q(p,   i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] }
                    END { printf "%s,%s,%s,%s", q(.5), q(.95), q(.99), NR }'
            if [ $sys = trivial ]; then printf ','; fi
        done | sed "s/^/$a,/"
        echo
    done
}

tables() {
    echo "Users: $USERS; sessions of $SESSION (arrivals over 5 s); min_idle $MIN_IDLE;"
    echo "$(date -u +%Y-%m-%d), $(nproc) cores. Memory: the sum of the RSS of every"
    echo "$MEM_OF, mean of 0.5 s samples over the run. CPU: airlock,"
    echo "instances and hooks (cpuacct), not the load generator."
    [ "${CONFIG%-steady}" = "$CONFIG" ] || {
        echo "Steady (--steady): every run drives all $USERS users, the active ratio of"
        echo "them at a time, each next user arriving as one logs out; the per-run"
        echo "columns count every LOGIN, the pooled table only those after the run's"
        echo "first LOGOUT."
    }
    echo
    echo "| active | writes | interval | memory Trivial MiB | memory Standby MiB | reduction | instances T / S | CPU s T / S | LOGIN p50 T / S ms | LOGIN p99 T / S ms | p99 ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    pairs | awk -F, '{
        red = $4 > 0 ? 100 * (1 - $5 / $4) : 0; ratio = $12 > 0 ? $13 / $12 : 0
        printf "| %s %% | %s %% | %s | %.0f | %.0f | %.1f %% | %.0f / %.0f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2fx |\n",
            $1, $2, $3, $4, $5, red, $6, $7, $8, $9, $10, $11, $12, $13, ratio
    }'
    echo
    echo "Every operation (p50 / p95 / p99 ms), the median over the runs of each system:"
    echo
    echo "| operation | Trivial | Standby | operations T / S | errors T / S |"
    echo "|---|---|---|---|---|"
    for op in LOGIN WRITE QUERY_AVG LONG_WRITE LOGOUT; do
        awk -F, -v op=$op '
            function med(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            NR > 1 && $5 == op { s = $1; n[s]++; a50[s, n[s]] = $8; a95[s, n[s]] = $9; a99[s, n[s]] = $10; ok[s] += $6; er[s] += $7 }
            END {
                if (!n["trivial"] && !n["standby"]) exit
                line = "| " op
                for (si = 0; si < 2; si++) {
                    s = si ? "standby" : "trivial"
                    split("", x); split("", y); split("", z)
                    for (i = 1; i <= n[s]; i++) { x[i] = a50[s, i]; y[i] = a95[s, i]; z[i] = a99[s, i] }
                    line = line sprintf(" | %.1f / %.1f / %.1f", med(x, n[s]), med(y, n[s]), med(z, n[s]))
                }
                printf "%s | %d / %d | %d / %d |\n", line, ok["trivial"], ok["standby"], er["trivial"], er["standby"]
            }' "$R"
    done
    echo
    echo "LOGIN over every customer run pooled (all the LOGINs of a system, not a"
    echo "percentile of percentiles: a run at 5 % active has $((USERS * 5 / 100)) LOGINs, so its own p99 is"
    echo "its slowest one), ms:"
    echo
    echo "| active | Trivial p50 / p95 / p99 | Standby p50 / p95 / p99 | p99 ratio | LOGINs T / S |"
    echo "|---|---|---|---|---|"
    pooled | awk -F, '{ printf "| %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.2fx | %d / %d |\n",
        ($1 == "all" ? "all runs" : $1 " %"), $2, $3, $4, $6, $7, $8, ($4 > 0 ? $8 / $4 : 0), $5, $9 }'
    echo
    echo "Cold start: On-demand (a fresh server per arriving user, its ready line then its"
    echo "LOGIN, no router) against Standby's LOGIN (through the router, an idle instance"
    echo "reserved, the user's state brought in, the database opened), ms:"
    echo
    echo "| | p50 | p95 | p99 | n |"
    echo "|---|---|---|---|---|"
    awk -F, 'NR > 1 { r[++n] = $2; l[n] = $3; t[n] = $4 }
        function pct(a, n, q,   i, j, tmp) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { tmp = a[j]; a[j] = a[j - 1]; a[j - 1] = tmp }
            i = int(q * n + 0.999999); if (i < 1) i = 1; return a[i]
        }
        END {
            printf "| On-demand: process start to ready | %.1f | %.1f | %.1f | %d |\n", pct(r, n, .5), pct(r, n, .95), pct(r, n, .99), n
            printf "| On-demand: LOGIN once ready | %.1f | %.1f | %.1f | %d |\n", pct(l, n, .5), pct(l, n, .95), pct(l, n, .99), n
            printf "| On-demand: the user waits | %.1f | %.1f | %.1f | %d |\n", pct(t, n, .5), pct(t, n, .95), pct(t, n, .99), n
        }' "$OD"
    awk -F, 'NR > 1 && $1 == "standby" && $5 == "LOGIN" { p50[++n] = $8; p95[n] = $9; p99[n] = $10; ok += $6 }
        function med(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END { printf "| Standby: LOGIN (median over runs) | %.1f | %.1f | %.1f | %d |\n", med(p50, n), med(p95, n), med(p99, n), ok }' "$R"
    echo
    echo "Targets:"
    echo
    pairs | awk -F, '
        $3 != "meter" { red = $4 > 0 ? 100 * (1 - $5 / $4) : 0
          if (!($1 in lo) || red < lo[$1]) lo[$1] = red }
        END {
            printf "- memory reduced >= 45 %% at 50 %% active: lowest %.1f %% over the runs: %s\n", lo[50], (lo[50] >= 45 ? "met" : "not met")
            printf "- memory reduced >= 90 %% at 5 %% active: lowest %.1f %%: %s\n", lo[5], (lo[5] >= 90 ? "met" : "not met")
        }'
    pooled | awk -F, '$4 > 0 { r = $8 / $4; if (r > w) { w = r; wa = $1 } }
        END { printf "- LOGIN p99 <= 1.0x Trivial, every LOGIN pooled per active ratio and overall: worst %.2fx (%s): %s\n", w, (wa == "all" ? "all runs" : wa " % active"), (w <= 1.0 ? "met" : "not met") }'
}

T=$(mktemp)
tables >"$T"
python3 - "$DOC" "$T" "$MARKER" <<'PY'
import sys
doc, tab, m = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
s = open(doc).read()
a, b = "<!-- %s -->\n" % m, "<!-- /%s -->\n" % m
if a not in s:  # a configuration never run before: its own section, at the end
    s += "\n## Results: %s\n\n%s%s" % (m, a, b)
i, j = s.index(a) + len(a), s.index(b)
open(doc, "w").write(s[:i] + tab + s[j:])
PY

# plot SCRIPT: the gnuplot SCRIPT once as PNG and once as SVG ("@EXT@" in
# its output names becomes png or svg)
plot() {
    local ext term
    for ext in png svg; do
        [ $ext = png ] && term="pngcairo size 900,500" || term="svg size 900,500"
        { echo "set terminal $term"; echo "${1//@EXT@/$ext}"; } | gnuplot
    done
}

# plots: memory by active ratio (mean over write ratios and intervals), LOGIN
# p99 per run, and the cold start
pairs | awk -F, '$3 != "meter" { m[$1] += $4; s[$1] += $5; n[$1]++ }
    END { for (a in n) printf "%s %.1f %.1f\n", a, m[a] / n[a], s[a] / n[a] }' | sort -rn >"$DIR/memory.dat"
pairs | awk -F, '{ printf "\"%s%% %s%% %s\" %s %s\n", $1, $2, $3, $12, $13 }' >"$DIR/login.dat"
awk -F, 'NR > 1 { print NR - 1, $2, $3, $4 }' "$OD" >"$DIR/ondemand.dat"
standby_p50=$(grep -o '| Standby: LOGIN (median over runs) | [0-9.]*' "$T" | awk '{ print $NF }')
rm -f "$T"
plot "
set output '$DIR/memory.@EXT@'
set title 'Instance memory (sum of RSS), $USERS users'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'MiB'
set xlabel 'active users'
set yrange [0:*]
plot '$DIR/memory.dat' using 2:xtic(sprintf('%s %%', stringcolumn(1))) title 'Trivial', '' using 3 title 'Standby'
set output '$DIR/login.@EXT@'
set title 'LOGIN p99 per run (active, writes, interval)'
set ylabel 'ms'
set xlabel ''
set xtics rotate by -45 font ',8'
plot '$DIR/login.dat' using 2:xtic(1) title 'Trivial', '' using 3 title 'Standby'
set output '$DIR/ondemand.@EXT@'
set title 'Cold start: On-demand user wait vs Standby LOGIN p50'
set style histogram rowstacked
set xtics norotate font ''
set ylabel 'ms'
set xlabel 'user (one fresh process each)'
set xrange [-0.5:*]
plot '$DIR/ondemand.dat' using 2 title 'process start to ready', '' using 3 title 'LOGIN', ${standby_p50:-0} with lines lw 2 title 'Standby LOGIN p50'
"
echo "wrote $DOC and $DIR/{memory,login,ondemand}.{png,svg}" >&2
