#!/usr/bin/env bash
# h2load.sh BIN BENCH_LIB_DIR -- HTTP/2 over TLS, sozu against HAProxy.
#
# Starts the shared nginx origin, HAProxy (1 thread, TLS bind with ALPN
# h2,http/1.1) and sozu BIN (1 worker, one HTTPS listener, ALPN default
# h2 then http/1.1) in front of it, checks that both answer the origin's
# body over HTTP/2, then runs `h2load -c10 -m10` (10 connections, 10
# concurrent streams each) for H2_DUR seconds [10] per run, interleaved
# sozu/HAProxy over H2_ROUNDS rounds [3] (order swapped each round). Every
# process is started and stopped by PID (bench-lib.sh) and every h2load run
# is bounded by timeout. The last line reads
#   h2_ratio_vs_haproxy=R sozu_rps=... haproxy_rps=... sozu_cpu_us_per_req=... haproxy_cpu_us_per_req=... sozu_failed=N
# with medians; CPU is utime+stime of each proxy's process tree per
# succeeded request. Exit 3 when a target fails the sanity check, 4 when
# sozu failed requests.
set -u
BIN=${1:?usage: h2load.sh BIN BENCH_LIB_DIR}
LIB=${2:?usage: h2load.sh BIN BENCH_LIB_DIR}
DUR=${H2_DUR:-10}
ROUNDS=${H2_ROUNDS:-3}
BPORT=18080 HAP=18501 HAP_PLAIN=18601 SOZU=18502
source "$LIB/bench-lib.sh"
command -v h2load >/dev/null || die "h2load not found (package nghttp2-client)"
R=$(mktemp -d /tmp/h2load-bench.XXXXXX)
chmod 755 "$R"
trap 'stop_all; rm -rf "$R"' EXIT
trap 'exit 130' INT TERM

make_cert "$R"
start_backend "$R" "$BPORT"
start_haproxy "$R" hap 1 "127.0.0.1:$HAP_PLAIN" "127.0.0.1:$BPORT" "127.0.0.1:$HAP"
HAP_PID=$LAST_PID
printf '%s\n' "command_socket = \"$R/sozu.sock\"" 'worker_count = 1' 'log_level = "error"' \
    '[[listeners]]' 'protocol = "https"' "address = \"127.0.0.1:$SOZU\"" \
    "certificate = \"$R/cert.pem\"" "key = \"$R/key.pem\"" 'strict_sni_binding = false' \
    '[clusters.bench]' 'protocol = "http"' \
    "frontends = [ { address = \"127.0.0.1:$SOZU\", hostname = \"*\" } ]" \
    "backends = [ { address = \"127.0.0.1:$BPORT\" } ]" >"$R/sozu.toml"
start_bg "$R/sozu.out" "$BIN" start -c "$R/sozu.toml"
SOZU_PID=$LAST_PID
wait_port 127.0.0.1 "$SOZU" 20 || die "sozu did not listen (see $R/sozu.out)"

want=$(curl -s -m 5 "http://127.0.0.1:$BPORT/" | md5sum)
for p in "$SOZU" "$HAP"; do
    v=$(curl -sk -m 5 --http2 -o /dev/null -w '%{http_version} %{http_code}' "https://127.0.0.1:$p/")
    got=$(curl -sk -m 5 --http2 "https://127.0.0.1:$p/" | md5sum)
    [[ $v == "2 200" && $got == "$want" ]] || { log "sanity check failed on port $p: $v"; exit 3; }
done
for p in "$SOZU" "$HAP"; do  # warm-up, unrecorded
    timeout 30 h2load -c10 -m10 -D 2 "https://127.0.0.1:$p/" >/dev/null 2>&1
done

declare -A RPS=([sozu]="" [haproxy]="") CPU=([sozu]="" [haproxy]="")
failed=0
for ((round = 1; round <= ROUNDS; round++)); do
    order="sozu haproxy"; ((round % 2 == 0)) && order="haproxy sozu"
    for t in $order; do
        p=$SOZU pid=$SOZU_PID
        [[ $t == haproxy ]] && { p=$HAP; pid=$HAP_PID; }
        out=$R/h2load.$t.$round.txt
        c0=$(cpu_ticks "$pid")
        timeout $((DUR + 30)) h2load -c10 -m10 -D "$DUR" "https://127.0.0.1:$p/" >"$out" 2>&1 \
            || log "h2load exited $? for $t (see $out)"
        c1=$(cpu_ticks "$pid")
        read -r rps mean ok bad < <(parse_h2load "$out")
        cpu=$(awk -v d=$((c1 - c0)) -v r="$ok" 'BEGIN{printf "%.1f", (r > 0 ? d * 10000 / r : 0)}')
        [[ $t == sozu ]] && failed=$((failed + bad))
        RPS[$t]+=" $rps"; CPU[$t]+=" $cpu"
        log "h2 $t r$round: req_per_s=$rps mean_ms=$mean cpu_us_per_req=$cpu succeeded=$ok failed=$bad"
    done
done
s=$(median ${RPS[sozu]}); h=$(median ${RPS[haproxy]})
sc=$(median ${CPU[sozu]}); hc=$(median ${CPU[haproxy]})
echo "h2_ratio_vs_haproxy=$(awk -v s="$s" -v h="$h" 'BEGIN{printf "%.2f", (h > 0 ? s / h : 0)}') sozu_rps=$s haproxy_rps=$h" \
     "sozu_cpu_us_per_req=$sc haproxy_cpu_us_per_req=$hc sozu_failed=$failed"
[[ $failed -eq 0 ]] || exit 4
