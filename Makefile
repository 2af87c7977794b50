# Makefile for the Go Sōzu. Every target installs what it needs with apt-get
# when it is missing, so a fresh Debian machine (as root) needs nothing else.

SHELL := /bin/bash
GO ?= go
BIN := bin/sozu
PKGS := ./...
# The tests that skip themselves under -race (see test).
NORACE_TESTS := ^(TestKeepAliveRoundTripAllocs|TestKeepAliveTLSRoundTripAllocs|TestRelayDoesNotAllocate|TestH2StreamAllocs|TestH2StreamGoroutines|TestIdleTLSConnectionStack|TestH2IdleConnectionStack)$$
FUZZTIME ?= 30s
EXAMPLE_CONFIG := docs/examples/config.toml

# deps: Debian packages the build and the tests use.
APT_PKGS := protobuf-compiler libseccomp-dev gcc curl openssl nghttp2-client strace wrk
BENCH_PKGS := wrk haproxy nginx
# Go tools the tests run, installed with `go install` into $(GOBIN_DIR).
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
H2SPEC := github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
export PATH := $(GOBIN_DIR):$(PATH)

.PHONY: all build run stop test fuzz bench proto lint deps bench-deps clean

all: build

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v h2spec >/dev/null 2>&1 || { echo "installing: h2spec"; GOBIN=$(GOBIN_DIR) $(GO) install $(H2SPEC); }

bench-deps: deps
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(GO) build -o $(BIN) ./cmd/sozu

# run: the proxy on the example config, in the background, with the demo
# backend on 127.0.0.1:8081; logs and pids in ./run. `make stop` stops both.
run: build
	@mkdir -p run && chmod 0750 run
	@$(MAKE) --no-print-directory stop >/dev/null 2>&1 || true
	$(GO) build -o bin/demo-backend ./cmd/demo-backend
	@nohup ./bin/demo-backend -listen 127.0.0.1:8081 >run/demo-backend.log 2>&1 & echo $$! >run/demo-backend.pid
	@nohup ./$(BIN) start -c $(EXAMPLE_CONFIG) >run/sozu.log 2>&1 & echo $$! >run/sozu.pid
	@for i in $$(seq 1 100); do \
		./$(BIN) -c $(EXAMPLE_CONFIG) -t 1000 status >/dev/null 2>&1 && break; \
		if ! kill -0 $$(cat run/sozu.pid) 2>/dev/null; then echo "sozu failed to start:"; cat run/sozu.log; exit 1; fi; \
		sleep 0.1; \
	done
	@./$(BIN) -c $(EXAMPLE_CONFIG) status
	@echo "sozu is running (pid $$(cat run/sozu.pid), log run/sozu.log); demo backend on 127.0.0.1:8081"
	@echo "try: curl http://localhost:8080/    stop with: make stop"

stop:
	@if [ -f run/sozu.pid ]; then ./$(BIN) -c $(EXAMPLE_CONFIG) -t 10000 shutdown >/dev/null 2>&1 || kill $$(cat run/sozu.pid) 2>/dev/null || true; rm -f run/sozu.pid; fi
	@if [ -f run/demo-backend.pid ]; then kill $$(cat run/demo-backend.pid) 2>/dev/null || true; rm -f run/demo-backend.pid; fi

test: deps build
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	@# What the race detector distorts (allocations, pooled objects, stack
	@# sizes) is measured without it: these tests skip themselves under -race.
	$(GO) test -count=1 -timeout 5m -run '$(NORACE_TESTS)' ./worker/proxy ./worker/tcp

# fuzz: each fuzz target for $(FUZZTIME).
fuzz: deps
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; \
	done

bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	bash ../shared/bench/proxy-bench.sh --sozu ./$(BIN) -c 50
	bash ../shared/bench/proxy-bench.sh --sozu ./$(BIN) -c 200
	@# 64 KiB bodies: the splice and vectored-write paths.
	bash ../shared/bench/proxy-bench.sh --sozu ./$(BIN) -c 50 --path /64k.bin
	bash ../shared/bench/proxy-bench.sh --sozu ./$(BIN) --tls -c 50
	@# HTTP/2 over TLS: h2load -c10 -m10, sozu vs HAProxy interleaved over
	@# 3 rounds of 10 s; the last line is the median ratio and CPU us/req.
	bash worker/h2/testdata/h2load.sh ./$(BIN) ../shared/bench
	@# Cost of observability (issue 15): H1 c50, sozu against sozu in one
	@# run, JSON access logs to a file and statsd metrics on against the
	@# defaults (log_level "error" and no access_logs_target: records of
	@# successes are not written, as upstream's; no metrics export): both
	@# off. Target: paired_rps_ratio >= 0.95 (the median of the per-round
	@# ratios: a round's two runs are adjacent and share the VM's phase);
	@# 10 rounds, for the VM's variance.
	AB_ROUNDS=10 bash worker/proxy/testdata/sozu-ab.sh ./$(BIN) ../shared/bench defaults '' logs_metrics \
		$$'access_logs_target = "file://{DIR}/access.log"\naccess_logs_format = "json"\n[metrics]\naddress = "127.0.0.1:18283"'
	@# The design's ceiling (docs/architecture.md): a bare proxy with its own
	@# epoll loop, then with a goroutine per connection, against HAProxy.
	@mkdir -p bin && cd worker/proxy/testdata/evproxy && $(GO) build -o ../../../../bin/evproxy .
	bash ../shared/bench/proxy-bench.sh --cmd 'env GOMAXPROCS=1 ./bin/evproxy -l {LISTEN} -b {BACKEND}' -c 50
	bash ../shared/bench/proxy-bench.sh --cmd 'env GOMAXPROCS=1 ./bin/evproxy -mode go -l {LISTEN} -b {BACKEND}' -c 50
	@# Memory per idle keep-alive client connection (4 000 idle clients,
	@# RSS growth per connection, when all are idle and 15 s later: the idle
	@# state, once a sozu worker gave the burst's spare heap back), plain and
	@# TLS, sozu vs HAProxy.
	bash worker/proxy/testdata/idle-mem.sh ./$(BIN) ../shared/bench
	@# Full TLS handshakes (wrk and h2load resume sessions): connbench, one
	@# request per connection, sozu vs HAProxy (1 thread each) interleaved over
	@# 3 rounds of 10 s; the last line is the median ratio. connbench sends
	@# SNI "localhost" with Host 127.0.0.1: strict SNI binding would answer 421.
	@set -u; source ../shared/bench/bench-lib.sh; R=$$(mktemp -d); 	trap 'stop_all; rm -rf "$$R"' EXIT; trap 'exit 130' INT TERM; 	(cd ../shared/bench/connbench && timeout 300 $(GO) build -o "$$R/connbench" .) || die "connbench build failed"; 	make_cert "$$R"; start_backend "$$R" 18080; 	start_haproxy "$$R" hap 1 127.0.0.1:18101 127.0.0.1:18080 127.0.0.1:18401; 	printf '%s\n' "command_socket = \"$$R/sozu.sock\"" 'worker_count = 1' 'log_level = "error"' \
		'[[listeners]]' 'protocol = "https"' 'address = "127.0.0.1:18402"' \
		"certificate = \"$$R/cert.pem\"" "key = \"$$R/key.pem\"" 'strict_sni_binding = false' '[clusters.bench]' 'protocol = "http"' \
		'frontends = [ { address = "127.0.0.1:18402", hostname = "*" } ]' \
		'backends = [ { address = "127.0.0.1:18080" } ]' >"$$R/sozu.toml"; 	start_bg "$$R/sozu.out" ./$(BIN) start -c "$$R/sozu.toml"; 	wait_port 127.0.0.1 18402 20 || die "sozu did not listen (see $$R/sozu.out)"; 	for p in 18401 18402; do timeout 20 env GOMAXPROCS=1 "$$R/connbench" -c 20 -d 2s -url "https://127.0.0.1:$$p/" >/dev/null 2>&1; done; 	declare -A cps=([sozu]="" [haproxy]=""); 	for round in 1 2 3; do 		order="sozu haproxy"; [[ $$round == 2 ]] && order="haproxy sozu"; 		for t in $$order; do 			p=18402; [[ $$t == haproxy ]] && p=18401; 			out=$$(timeout 60 env GOMAXPROCS=1 "$$R/connbench" -c 20 -d 10s -url "https://127.0.0.1:$$p/" 2>&1); 			v=$$(grep -o 'conns_per_s=[0-9.]*' <<<"$$out" | cut -d= -f2); 			e=$$(grep -o 'errors=[0-9]*' <<<"$$out" | cut -d= -f2); 			log "tlsnew $$t r$$round: conns_per_s=$${v:-0} errors=$${e:-?}"; cps[$$t]+="$${v:-0} "; 		done; 	done; 	s=$$(median $${cps[sozu]}); h=$$(median $${cps[haproxy]}); 	echo "handshake_ratio_vs_haproxy=$$(awk -v s=$$s -v h=$$h 'BEGIN{printf "%.2f", (h > 0 ? s/h : 0)}') sozu_conns_per_s=$$s haproxy_conns_per_s=$$h"

proto: deps
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
		--go_out=. --go_opt=module=github.com/sozu-go/sozu \
		-I proto proto/command.proto

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
