# Makefile for the Go Sōzu. Every target installs what it needs with apt-get
# when it is missing, so a fresh Debian machine (as root) needs nothing else.

SHELL := /bin/bash
GO ?= go
BIN := bin/sozu
PKGS := ./...
FUZZTIME ?= 30s
EXAMPLE_CONFIG := docs/examples/config.toml

# deps: Debian packages the build and the tests use.
APT_PKGS := protobuf-compiler libseccomp-dev gcc curl openssl nghttp2-client strace
BENCH_PKGS := wrk haproxy nginx

.PHONY: all build run stop test fuzz bench proto lint deps bench-deps clean

all: build

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

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

proto: deps
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
		--go_out=. --go_opt=module=github.com/sozu-go/sozu \
		-I proto proto/command.proto

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
