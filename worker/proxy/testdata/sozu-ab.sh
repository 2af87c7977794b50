#!/usr/bin/env bash
# sozu-ab.sh BIN BENCH_LIB_DIR NAME_A EXTRA_A NAME_B EXTRA_B -- sozu against
# sozu: the same binary under two configurations, on one nginx origin.
#
# EXTRA_A and EXTRA_B are global TOML lines added to a config with one HTTP
# listener, AB_WORKERS [1] workers and log_level "error" (e.g. 'worker_threads = 0', or
# access logs and metrics on); {DIR} in them is replaced by the proxy's own
# scratch directory (for log files). Both proxies run at once, each on its port;
# wrk (-c AB_CONNS [50], AB_DUR [5] s per run, AB_ROUNDS [5] rounds, the
# order swapped every round) loads one at a time, after a sync (the log
# files of earlier runs reach the disk outside the window). Per run: req/s and the
# CPU time (utime+stime of the proxy's process tree, bench-lib.sh
# cpu_ticks) per completed request. Every process is started and stopped
# by PID (bench-lib.sh), every wrk run bounded by timeout. The last line reads
#   ab NAME_A_rps=… NAME_A_cpu_us=… NAME_B_rps=… NAME_B_cpu_us=… cpu_ratio=B/A rps_ratio=B/A
# (medians), then paired_rps_ratio=… paired_cpu_ratio=…: the median over
# rounds of B/A within a round. The two runs of a round are adjacent, so
# they share the machine's phase (this VM's speed drifts by 20 % within a
# minute): the paired figures are the ones to read.
# Exit 3 when a proxy fails the sanity check or a run has errors.
set -u
usage="usage: sozu-ab.sh BIN BENCH_LIB_DIR NAME_A EXTRA_A NAME_B EXTRA_B"
BIN=$(readlink -f "${1:?$usage}")
LIB=${2:?$usage}
NA=${3:?$usage} XA=${4?$usage} NB=${5:?$usage} XB=${6?$usage}
CONNS=${AB_CONNS:-50} DUR=${AB_DUR:-5} ROUNDS=${AB_ROUNDS:-5}
BPORT=${AB_BPORT:-18280} PA=18281 PB=18282
[[ -r $LIB/bench-lib.sh ]] || { echo "sozu-ab.sh: no bench-lib.sh in $LIB" >&2; exit 2; }
source "$LIB/bench-lib.sh"
R=$(mktemp -d /tmp/sozu-ab.XXXXXX)
chmod 755 "$R"
trap 'stop_all; [[ -n ${AB_KEEP:-} ]] || rm -rf "$R"' EXIT
trap 'exit 130' INT TERM
start_backend "$R" "$BPORT"
want=$(curl -s -m 5 "http://127.0.0.1:$BPORT/" | md5sum)

# start NAME PORT EXTRA : starts sozu, sets PID_<NAME>.
start() {
    local name=$1 port=$2 extra=$3 d=$R/$1
    mkdir -p "$d"; chmod 755 "$d"
    {
        echo "command_socket = \"$d/sozu.sock\""
        echo "worker_count = ${AB_WORKERS:-1}"
        echo 'log_level = "error"'
        printf '%s\n' "${extra//\{DIR\}/$d}"
        echo '[[listeners]]'
        echo 'protocol = "http"'
        echo "address = \"127.0.0.1:$port\""
        echo '[clusters.bench]'
        echo 'protocol = "http"'
        echo "frontends = [ { address = \"127.0.0.1:$port\", hostname = \"*\" } ]"
        echo "backends = [ { address = \"127.0.0.1:$BPORT\" } ]"
    } >"$d/sozu.toml"
    start_bg "$d/sozu.out" "$BIN" start -c "$d/sozu.toml"
    printf -v "PID_$name" %s "$LAST_PID"
    wait_port 127.0.0.1 "$port" 20 || die "sozu $name did not listen (see $d/sozu.out)"
    [[ $(curl -s -m 5 "http://127.0.0.1:$port/" | md5sum) == "$want" ]] || { log "sozu $name: wrong body"; exit 3; }
    log "sozu $name: $(tr '\n' ' ' <<<"${extra//\{DIR\}/$d}")"
}
start A "$PA" "$XA"
start B "$PB" "$XB"
for p in "$PA" "$PB"; do timeout 30 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$p/" >/dev/null 2>&1; done

declare -A RPS=([A]="" [B]="") CPU=([A]="" [B]="") LAST=()
PRPS="" PCPU=""
hz=$(getconf CLK_TCK)
for ((round = 1; round <= ROUNDS; round++)); do
    order="A B"; ((round % 2 == 0)) && order="B A"
    for t in $order; do
        port=$PA pid=$PID_A name=$NA; [[ $t == B ]] && { port=$PB pid=$PID_B name=$NB; }
        out=$R/wrk.$t.$round.txt
        # What earlier runs wrote (log files) reaches the disk now, not
        # inside this run's window; this run's own writeback stays in.
        sync
        c0=$(cpu_ticks "$pid")
        timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$port/" >"$out" 2>&1
        c1=$(cpu_ticks "$pid")
        read -r rps _ p99 req err non2 < <(parse_wrk "$out")
        ((err == 0 && non2 == 0 && req > 0)) || { log "$name round $round: errors=$err non2xx=$non2 requests=$req (see $out)"; exit 3; }
        us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$req" 'BEGIN{printf "%.1f", c * 1e6 / hz / n}')
        log "$name round $round: rps=$rps p99=${p99}ms cpu=${us}us/req"
        RPS[$t]+="$rps " CPU[$t]+="$us "
        LAST[$t.rps]=$rps LAST[$t.cpu]=$us
    done
    PRPS+="$(awk -v a="${LAST[A.rps]}" -v b="${LAST[B.rps]}" 'BEGIN{printf "%.4f", b / a}') "
    PCPU+="$(awk -v a="${LAST[A.cpu]}" -v b="${LAST[B.cpu]}" 'BEGIN{printf "%.4f", b / a}') "
done
log "paired rps ratios B/A per round: $PRPS"
ra=$(median ${RPS[A]}) rb=$(median ${RPS[B]}) ca=$(median ${CPU[A]}) cb=$(median ${CPU[B]})
for t in A B; do log "$t: scratch $R/$t: $(du -sh "$R/$t" | cut -f1) (access log files land here)"; done
echo "ab ${NA}_rps=$ra ${NA}_cpu_us=$ca ${NB}_rps=$rb ${NB}_cpu_us=$cb" \
    "cpu_ratio=$(awk -v a="$ca" -v b="$cb" 'BEGIN{printf "%.3f", (a > 0 ? b / a : 0)}')" \
    "rps_ratio=$(awk -v a="$ra" -v b="$rb" 'BEGIN{printf "%.3f", (a > 0 ? b / a : 0)}')" \
    "paired_rps_ratio=$(median $PRPS) paired_cpu_ratio=$(median $PCPU)"
