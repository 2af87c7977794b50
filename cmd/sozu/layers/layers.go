// Package layers is the import-direction table of the module: for each of
// our packages, its job and which of our packages it may import. Its test
// checks every import (and the control plane's whole dependency set) against
// it, and generates the package table of docs/architecture.md from it.
package layers

import "strings"

// Module is the module path; patterns are relative to it.
const Module = "github.com/sozu-go/sozu"

// Layer is one row: the packages Pkg matches may import, of ours, only what
// Imports matches (their tests may also import what Tests matches). When
// Deps is set, every package of ours they depend on, directly or not
// (go list -deps), matches Deps too.
//
// A pattern is a package path relative to Module, or "p/..." for p and every
// package below it. The first row whose Pkg matches a package is its row.
type Layer struct {
	Pkg     string
	Job     string
	Imports []string
	Tests   []string
	Deps    []string
}

// controlPlane is what the supervisor's side may import: the protocol, the
// peer and account lookups, audit, and the data plane's pure checks (never a
// server, nor the sandbox).
var controlPlane = []string{
	"proto/...", "peercred", "sandbox/account", "audit", "supervisor/...",
	"worker/settings", "worker/policy", "worker/answers", "worker/http1", "worker/router",
	"worker/logfilter", "worker/tlsconf", "worker/idna",
}

// dataPlane is what a worker package may depend on: never the supervisor.
var dataPlane = []string{"proto/...", "sandbox", "worker/..."}

// none allows no package of ours.
var none = []string{}

// Table is the direction of the module's imports, first match wins.
var Table = []Layer{
	{Pkg: "proto/command", Job: "generated code from `proto/command.proto`, plus address and verb-name helpers"},
	{Pkg: "proto/frame", Job: "length-prefixed frame reader and writer, typed frame errors, the decode-cost bound of a payload", Tests: []string{"proto/command"}},
	{Pkg: "proto/statefile", Job: "upstream's JSON state-file codec, generic over protoreflect", Imports: []string{"proto/command"}},
	{Pkg: "proto/logframe", Job: "the framing of the log channel from a worker to the supervisor"},
	{Pkg: "proto/state", Job: "`ConfigState`: the configuration state and upstream's acceptance rules, save order, queries, cluster hashes (over the masked form of secrets: proto/redact)",
		Imports: []string{"proto/command", "proto/redact"}, Tests: []string{"proto/statefile"}},
	{Pkg: "proto/...", Job: "any other package of the protocol: only the protocol", Imports: []string{"proto/..."}, Deps: []string{"proto/..."}},

	{Pkg: "peercred", Job: "SO_PEERCRED, PID-reuse-guarded comm, cached bounded user lookup", Deps: none},
	{Pkg: "sandbox/account", Job: "resolves `worker_user`/`worker_group` to numeric ids (the supervisor does; workers never read the user database); no cgo", Deps: none},
	{Pkg: "sandbox", Job: "privilege drop, seccomp policy table and loader (cgo), inherited descriptors, `/proc` status", Tests: []string{"sandbox/account"}, Deps: none},
	{Pkg: "audit", Job: "records, sanitiser, sinks, HMAC chain and its sealed head, verifier, schema", Imports: []string{"proto/...", "supervisor/safefile"}},
	{Pkg: "supervisor/safefile", Job: "opening configuration-named paths without following symlinks, with owner, mode, type and size rules (a leaf: x/sys only)", Deps: none},

	{Pkg: "supervisor/admission", Job: "the pure verb → role decision, roles read from the verb catalogue", Imports: []string{"peercred", "proto/verbs"}, Tests: []string{"proto/command"}},
	{Pkg: "supervisor/identity", Job: "the per-session identity envelope", Imports: []string{"peercred", "supervisor/admission"}},
	{Pkg: "supervisor/logtarget", Job: "the log targets (stdout, file, udp, tcp, unix) behind a bounded queue that never blocks: drops counted and reported, reconnection, reopen", Imports: none},
	{Pkg: "supervisor/asuser", Job: "file operations with a client's filesystem identity, for the paths clients name; a supervisor that is not root refuses every uid but its own and root's"},
	{Pkg: "supervisor/config", Job: "TOML → validated `Config` → `[]WorkerRequest` and `ServerConfig`; `LoadClient`, the CLI's read of the client keys",
		Imports: []string{"proto/...", "supervisor/...", "worker/settings", "worker/answers", "worker/logfilter", "worker/tlsconf", "worker/idna"},
		Deps:    controlPlane},
	{Pkg: "supervisor", Job: "command socket, sessions, the state actor, worker table, fan-out, state files, stop",
		Imports: controlPlane, Tests: []string{"sandbox", "cmd/sozu/sozutest"}, Deps: controlPlane},
	{Pkg: "supervisor/...", Job: "any other package of the control plane", Imports: controlPlane, Deps: controlPlane},
	{Pkg: "compliance", Job: "the PCI DSS control catalogue and the pure evaluation of a gathered snapshot",
		Imports: []string{"proto/...", "worker/tlsconf"}, Deps: []string{"proto/...", "worker/tlsconf", "worker/idna"}},

	{Pkg: "worker/settings", Job: "the checks the supervisor and workers share: what a worker would not honour in a cluster, frontend or listener answers (`CheckCluster`, `CheckFrontend`, `Issue`)",
		Imports: []string{"proto/...", "worker/policy", "worker/answers", "worker/http1", "worker/router"}},
	{Pkg: "worker/policy", Job: "compiled frontend and cluster policies the proxy applies: redirects, rewrites, header edits, basic-auth credentials",
		Imports: []string{"worker/answers", "worker/http1", "worker/router"}},
	{Pkg: "worker/tlsconf", Job: "TLS policy: certificate validation, SNI index, `tls.Config` (crypto only)", Imports: []string{"proto/command", "worker/idna"}},
	{Pkg: "worker/idna", Job: "internationalized host names to A-labels (Punycode), for routing rules and certificate names"},
	{Pkg: "worker/logfilter", Job: "the log filter grammar shared by `log_level` and the `Logging` verb"},
	{Pkg: "worker/http1", Job: "the strict HTTP/1.1 codec"},
	{Pkg: "worker/answers", Job: "answer templates", Imports: []string{"worker/http1"}},
	{Pkg: "worker/router", Job: "the routing snapshot: hostname rules (exact, wildcard, regex), path rules, rewrite templates", Imports: []string{"worker/idna"}},
	{Pkg: "worker/deadline", Job: "lazily re-armed connection deadlines"},
	{Pkg: "worker/connlimit", Job: "the worker's connection cap and accept loops"},
	{Pkg: "worker/proxyproto", Job: "PROXY protocol v2 headers"},
	{Pkg: "worker/backends", Job: "backend sets, selection, keep-alive pools and HTTP/2 streams", Imports: []string{"proto/command", "worker/backends/h2c", "worker/deadline"}},
	{Pkg: "worker/backends/h2c", Job: "the HTTP/2 prior-knowledge client to backends: pooled connections, streams seen as HTTP/1.1 connections", Imports: []string{"worker/http1"}},
	{Pkg: "worker/ipcap", Job: "the cap on connections per cluster and client IP"},
	{Pkg: "worker/splice", Job: "moving bytes between two sockets through a kernel pipe: the pipes, their free list and capacity"},
	{Pkg: "worker/relay", Job: "one way of a relay (TCP sessions, upgraded HTTP connections): a buffer or a splice pipe held only while bytes are on hand", Imports: []string{"worker/splice"}},
	{Pkg: "worker/memtrim", Job: "giving a quiet worker's spare heap memory back to the system after a burst"},
	{Pkg: "worker/metrics", Job: "the worker's metrics registry: atomic counters and timing sketches per proxy, cluster and backend", Imports: []string{"proto/command", "proto/metrics"}},
	{Pkg: "worker/health", Job: "active health checks: probe schedule, threshold state machine, HTTP/1.1, h2c, TCP and UDP probes", Imports: []string{"proto/command", "worker/backends", "worker/logmask"}},
	{Pkg: "worker/proxy", Job: "the HTTP/1.1 proxy server and session, and the bridge of HTTP/2 streams to it",
		Imports: []string{"worker/policy", "worker/answers", "worker/accesslog", "worker/backends", "worker/connlimit", "worker/deadline", "worker/h2", "worker/http1", "worker/ipcap", "worker/logmask", "worker/metrics", "worker/proxyproto", "worker/relay", "worker/router", "worker/splice"},
		Tests:   []string{"proto/command", "proto/metrics", "worker/accesslog/accesslogtest"}},
	{Pkg: "worker/tcp", Job: "the TCP proxy server", Imports: []string{"worker/accesslog", "worker/backends", "worker/connlimit", "worker/deadline", "worker/ipcap", "worker/metrics", "worker/proxyproto", "worker/relay", "worker/splice"},
		Tests: []string{"proto/metrics"}},
	{Pkg: "worker/logmask", Job: "keeps cardholder data and credentials out of logs: PAN (Luhn) and query-value masking"},
	{Pkg: "worker/accesslog", Job: "access log records, their ascii, protobuf and JSON encodings, and the shipper of the worker's logs to the supervisor",
		Imports: []string{"proto/logframe", "worker/logmask"}, Tests: []string{"proto/command"}},
	{Pkg: "worker/accesslog/accesslogtest", Job: "tests' access Logger over a real log channel, and the records read from its other end",
		Imports: []string{"proto/logframe", "worker/accesslog"}},
	{Pkg: "worker/udp", Job: "the UDP proxy server: flows, flow table, datagram relay, a flow's access record and metrics",
		Imports: []string{"worker/accesslog", "worker/backends", "worker/metrics", "worker/proxyproto"},
		Tests:   []string{"proto/command", "proto/metrics", "worker/accesslog/accesslogtest"}},
	{Pkg: "worker/h2", Job: "the HTTP/2 server connection handler",
		Imports: []string{"worker/policy", "worker/answers", "worker/backends", "worker/connlimit", "worker/deadline", "worker/http1", "worker/router"}},
	{Pkg: "worker", Job: "worker bootstrap, command loop, listener descriptors, the data plane's snapshot",
		Imports: dataPlane, Deps: dataPlane},
	{Pkg: "worker/...", Job: "any other package of the data plane", Imports: []string{"proto/...", "worker/..."}, Deps: dataPlane},

	{Pkg: "cmd/sozu/sozutest", Job: "the end-to-end harness", Imports: []string{"proto/..."}},
	{Pkg: "cmd/sozu/e2e", Job: "end-to-end tests of the binary", Tests: []string{"..."}},
	{Pkg: "cmd/sozu/top", Job: "`sozu top`: the pure view model (state in, frame out) and its pollers, which talk only the command socket",
		Imports: []string{"proto/..."}, Tests: []string{"proto/..."}, Deps: []string{"proto/..."}},
	{Pkg: "cmd/sozu", Job: "the binary: `start`, hidden `worker`, the CLI", Imports: []string{"..."}, Tests: []string{"..."}},
	{Pkg: "cmd/demo-backend", Job: "the HTTP origin of `make run`"},
	{Pkg: "cmd/sozu/layers", Job: "this table; its test guards the direction and writes this table"},
}

// Match reports whether the relative package path rel matches pattern.
func Match(pattern, rel string) bool {
	if pattern == "..." {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == p || strings.HasPrefix(rel, p+"/")
	}
	return rel == pattern
}

// Row returns the row of the relative package path rel, or nil.
func Row(rel string) *Layer {
	for i := range Table {
		if Match(Table[i].Pkg, rel) {
			return &Table[i]
		}
	}
	return nil
}
