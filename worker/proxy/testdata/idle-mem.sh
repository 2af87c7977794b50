#!/usr/bin/env bash
# idle-mem.sh BIN BENCH_LIB_DIR -- memory per idle keep-alive client
# connection, sozu against HAProxy.
#
# Builds testdata/idleconns and starts the shared nginx origin; then, for
# plain HTTP and for HTTPS in turn, starts fresh HAProxy (1 thread) and sozu
# BIN (1 worker) in front of it, and for each proxy: takes the RSS of
# the proxy's process tree (bench-lib.sh mem_kb), opens IDLE_N [4000]
# keep-alive connections that each make one request and then stay idle,
# takes the RSS again once all are idle and IDLE_SETTLE [15] seconds later
# (a sozu worker gives the spare heap of the connections' burst back
# once quiet for 5 s: worker/memtrim; HAProxy's RSS does not move), and
# closes them. The growth divided by IDLE_N is the memory per idle
# connection (TLS connections include what crypto/tls keeps per
# connection). Every process is started and stopped by PID (bench-lib.sh),
# every client bounded by timeout. The last two lines read
#   idle_kib_per_conn_at_ready sozu=S haproxy=H sozu_tls=ST haproxy_tls=HT conns=N
#   idle_kib_per_conn sozu=S haproxy=H sozu_tls=ST haproxy_tls=HT conns=N settled_s=T
# the second, the idle state, being the figure to read.
# Exit 3 when a proxy fails the sanity check or a client fails.
set -u
BIN=${1:?usage: idle-mem.sh BIN BENCH_LIB_DIR}
LIB=${2:?usage: idle-mem.sh BIN BENCH_LIB_DIR}
N=${IDLE_N:-4000}
SETTLE=${IDLE_SETTLE:-15}
BPORT=${IDLE_BPORT:-18080} HAP=18701 HAP_TLS=18711 SOZU=18702 SOZU_TLS=18712
source "$LIB/bench-lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
R=$(mktemp -d /tmp/idle-mem.XXXXXX)
chmod 755 "$R"
trap 'stop_all; [[ -n ${IDLE_KEEP:-} ]] || rm -rf "$R"' EXIT
trap 'exit 130' INT TERM
# Raised, never lowered: HAProxy's maxconn 8000 wants ~16 000 descriptors.
(($(ulimit -n) >= 2 * N + 1024)) || ulimit -n $((2 * N + 1024)) 2>/dev/null || die "cannot raise the file limit for $N connections"

(cd "$HERE/idleconns" && timeout 300 go build -o "$R/idleconns" .) || die "idleconns build failed"
make_cert "$R"
start_backend "$R" "$BPORT"
want=$(curl -s -m 5 "http://127.0.0.1:$BPORT/" | md5sum)

# measure NAME PID PORT TLS(0|1) : sets KIB0 and KIB to the KiB per idle
# connection once all are idle, then SETTLE seconds later.
measure() {
    local name=$1 pid=$2 port=$3 tls=$4 before ready after out cpid i flag=""
    out=$R/idleconns.$name.$port.txt
    read -r before _ < <(mem_kb "$pid")
    [[ $tls == 1 ]] && flag=-tls
    start_bg "$out" timeout 300 "$R/idleconns" -addr "127.0.0.1:$port" -n "$N" -hold 240s $flag
    cpid=$LAST_PID
    for ((i = 0; i < 1200; i++)); do  # all idle within 120 s
        grep -q '^ready' "$out" 2>/dev/null && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$out" || { log "idleconns failed against $name port $port (see $out): $(head -3 "$out")"; exit 3; }
    read -r ready _ < <(mem_kb "$pid")
    sleep "$SETTLE"  # the state measured: connections idle for a while
    kill -0 "$cpid" 2>/dev/null || { log "idleconns exited early against $name port $port (see $out)"; exit 3; }
    read -r after _ < <(mem_kb "$pid")
    stop_pid "$cpid"; forget_pid "$cpid"
    log "idle $name port $port tls=$tls: rss_kb before=$before ready=$ready after_${SETTLE}s=$after conns=$N"
    KIB0=$(awk -v a="$ready" -v b="$before" -v n="$N" 'BEGIN{printf "%.1f", (a - b) / n}')
    KIB=$(awk -v a="$after" -v b="$before" -v n="$N" 'BEGIN{printf "%.1f", (a - b) / n}')
}

# Each scheme gets fresh proxies, so that memory freed by the previous
# measurement is not reused by the next.
declare -A RES RES0
for tls in 0 1; do
    hp=$HAP sp=$SOZU scheme=http
    [[ $tls == 1 ]] && { hp=$HAP_TLS sp=$SOZU_TLS scheme=https; }
    start_haproxy "$R" hap$tls 1 "127.0.0.1:$HAP" "127.0.0.1:$BPORT" "127.0.0.1:$HAP_TLS"
    HAP_PID=$LAST_PID
    printf '%s\n' "command_socket = \"$R/sozu$tls.sock\"" 'worker_count = 1' 'log_level = "error"' \
        '[[listeners]]' 'protocol = "http"' "address = \"127.0.0.1:$SOZU\"" \
        '[[listeners]]' 'protocol = "https"' "address = \"127.0.0.1:$SOZU_TLS\"" \
        "certificate = \"$R/cert.pem\"" "key = \"$R/key.pem\"" 'strict_sni_binding = false' \
        '[clusters.bench]' 'protocol = "http"' \
        "frontends = [ { address = \"127.0.0.1:$SOZU\", hostname = \"*\" }, { address = \"127.0.0.1:$SOZU_TLS\", hostname = \"*\" } ]" \
        "backends = [ { address = \"127.0.0.1:$BPORT\" } ]" >"$R/sozu$tls.toml"
    start_bg "$R/sozu$tls.out" "$BIN" start -c "$R/sozu$tls.toml"
    SOZU_PID=$LAST_PID
    wait_port 127.0.0.1 "$SOZU_TLS" 20 || die "sozu did not listen (see $R/sozu$tls.out)"
    for p in "$sp" "$hp"; do
        got=$(curl -sk -m 5 --http1.1 "$scheme://127.0.0.1:$p/" | md5sum)
        [[ $got == "$want" ]] || { log "sanity check failed on $scheme port $p"; exit 3; }
    done
    measure sozu "$SOZU_PID" "$sp" "$tls"; RES[sozu$tls]=$KIB; RES0[sozu$tls]=$KIB0
    measure haproxy "$HAP_PID" "$hp" "$tls"; RES[haproxy$tls]=$KIB; RES0[haproxy$tls]=$KIB0
    stop_pid "$SOZU_PID"; forget_pid "$SOZU_PID"
    stop_pid "$HAP_PID"; forget_pid "$HAP_PID"
done
echo "idle_kib_per_conn_at_ready sozu=${RES0[sozu0]} haproxy=${RES0[haproxy0]} sozu_tls=${RES0[sozu1]} haproxy_tls=${RES0[haproxy1]} conns=$N"
echo "idle_kib_per_conn sozu=${RES[sozu0]} haproxy=${RES[haproxy0]} sozu_tls=${RES[sozu1]} haproxy_tls=${RES[haproxy1]} conns=$N settled_s=$SETTLE"
