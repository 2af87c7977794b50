# Makefile for the Go Sōzu. Every target installs what it needs with apt-get
# when it is missing, so a fresh Debian machine (as root) needs nothing else.

SHELL := /bin/bash
GO ?= go
BIN := bin/sozu
PKGS := ./...
FUZZTIME ?= 30s
EXAMPLE_CONFIG := docs/examples/config.toml

# deps: Debian packages the build and the tests use.
APT_PKGS := protobuf-compiler libseccomp-dev gcc curl openssl nghttp2-client
BENCH_PKGS := wrk haproxy nginx

.PHONY: all build run test fuzz bench proto lint deps bench-deps clean

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

# run: the proxy on the example config, with the demo backend on 127.0.0.1:8081.
# The proxy answers on http://localhost:8080/. Stop it with Ctrl-C.
run: build
	./scripts/run-demo.sh $(EXAMPLE_CONFIG)

test: deps build
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

# fuzz: each fuzz target for $(FUZZTIME).
fuzz: deps
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	bash ../shared/bench/proxy-bench.sh --sozu ./$(BIN) -c 50

proto: deps
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
		--go_out=. --go_opt=module=github.com/sozu-go/sozu \
		-I proto proto/command.proto

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
