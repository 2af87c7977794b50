package main

import (
	"slices"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// verb is one leaf of the command tree ("cluster add"). The table below is
// the single source for dispatch, help and shell completion.
type verb struct {
	path    string      // words after "sozu", space separated
	summary string      // one line for help listings
	flags   []*flagSpec // verb flags (globals are implicit)
	// exclusive lists groups of flags of which at most one may be given.
	exclusive [][]string
	args      *argSpec // positional arguments; nil = none
	example   string   // a valid command line (after "sozu"); tested
	hidden    bool     // not in help or completion (internal verbs)
	raw       bool     // everything after the verb is passed through unparsed
	// passthrough: global flags are read, every other argument (flags
	// included) is passed through in order to the verb's run function.
	passthrough bool
	// noDeadline: without -t the verb waits for its answer forever.
	noDeadline bool
	// stream: build's request is answered by a stream of events, which
	// the CLI prints until interrupted (events.go); -t bounds the stream.
	stream bool
	// build makes the request of a verb answered by the supervisor.
	build func(v *values) (*command.Request, error)
	// load, when set, completes the built request with the content of the
	// files its flags name, just before it is sent (build stays pure). It
	// returns a copy; its errors name the flag and the file.
	load func(req *command.Request, v *values, read readFileFunc) (*command.Request, error)
	// run implements a verb handled locally; exactly one of build and run
	// is set.
	run func(a *app, inv *invocation) int
	// keep, when set, trims the terminal answer to what the verb asked
	// for before it is rendered (a per-protocol listing of a full list).
	keep func(*command.Response)
	// refresh, when set, says how often to send the request again (0:
	// once): the verb then runs until interrupted or its connection fails.
	refresh func(v *values) time.Duration
	// oneRequired lists groups of flags of which one must be given; each
	// is also an exclusive group, so exactly one is given.
	oneRequired [][]string
}

// argSpec describes a verb's positional arguments.
type argSpec struct {
	name    string   // placeholder in usage ("SHELL", "VERB")
	min     int      //
	max     int      // -1 = unbounded
	choices []string // completion and validation; nil = free text
}

// group is an inner node of the command tree ("cluster", "frontend http").
type group struct {
	path    string
	summary string
}

var groups = []group{
	{"cluster", "manage clusters"},
	{"cluster health-check", "active health checks of a cluster's backends"},
	{"backend", "manage backends"},
	{"frontend", "manage frontends (routing rules)"},
	{"frontend http", "plain HTTP frontends"},
	{"frontend https", "TLS frontends"},
	{"frontend tcp", "TCP frontends"},
	{"frontend udp", "UDP frontends"}, // udp.go
	{"listener", "manage listeners"},
	{"listener http", "HTTP listeners"},
	{"listener https", "HTTPS listeners"},
	{"listener tcp", "TCP listeners"},
	{"listener udp", "UDP listeners"}, // udp.go
	{"certificate", "TLS certificates of HTTPS listeners"},
	{"connection-limit", "cap on connections per cluster and client IP"},
	{"state", "save and load the routing state"},
	{"config", "configuration file tools"},
	{"audit", "the audit trail"},
	{"metrics", "the workers' metrics: counters, gauges, latency percentiles"},
}

// verbs is the verb table, in help order. It is filled by init because
// help, completion and config check refer back to it.
var verbs []*verb

func init() {
	verbs = []*verb{
		{path: "start", summary: "run the proxy (supervisor and workers) in the foreground",
			passthrough: true, example: "start", run: runStartVerb},
		{path: "worker", summary: "internal: a worker process started by the supervisor",
			hidden: true, raw: true, example: "worker --id 0", run: runWorkerVerb},
		{path: "status", summary: "show the workers and whether they answer",
			example: "status", build: buildStatus},

		{path: "cluster list", summary: "list cluster hashes, or clusters by id or domain",
			flags:     []*flagSpec{fClusterID.withHelp("show this cluster"), fDomain.withHelp("show the clusters serving HOST[/PATH]")},
			exclusive: [][]string{{"id", "domain"}},
			example:   "cluster list --id shop", build: buildClusterList},
		{path: "cluster add", summary: "add or replace a cluster",
			flags: []*flagSpec{fClusterID.withRequired(), fLBPolicy, fLoadMetric, fStickySession, fHTTPSRedirect,
				fHTTPSRedirectPort, fSendProxy, fExpectProxyClus, fHTTP2, fMaxConnsPerIP, fRetryAfter,
				fWWWAuthenticate, fAuthorizedHash, fAnswer, fAnswer503},
			exclusive: [][]string{{"send-proxy", "expect-proxy"}},
			example:   "cluster add --id shop --load-balancing-policy least_loaded --sticky-session", build: buildClusterAdd,
			load: loadAnswerFiles},
		{path: "cluster remove", summary: "remove a cluster",
			flags:   []*flagSpec{fClusterID.withRequired()},
			example: "cluster remove --id shop", build: buildClusterRemove},
		{path: "cluster health-check set", summary: "set or replace the health check of a cluster",
			flags:   []*flagSpec{fClusterID.withRequired(), fHCURI, fHCInterval, fHCTimeout, fHCHealthy, fHCUnhealthy, fHCExpected},
			example: "cluster health-check set --id shop --uri /health --interval 10 --timeout 5 --healthy-threshold 3 --unhealthy-threshold 3 --expected-status 0",
			build:   buildHealthCheckSet},
		{path: "cluster health-check remove", summary: "stop checking a cluster; its backends return to rotation",
			flags:   []*flagSpec{fClusterID.withRequired()},
			example: "cluster health-check remove --id shop", build: buildHealthCheckRemove},
		{path: "cluster health-check list", summary: "list the health checks, or the one of a cluster",
			flags:   []*flagSpec{fClusterID.withHelp("show this cluster's")},
			example: "cluster health-check list --id shop", build: buildHealthCheckList},

		{path: "backend add", summary: "add or update a backend of a cluster",
			flags:   []*flagSpec{fClusterID.withRequired(), fBackendID, fAddress.withHelp("backend address"), fStickyID, fBackup, fWeight},
			example: "backend add --id shop --backend-id shop-0 --address 10.0.0.10:8000 --weight 100", build: buildBackendAdd},
		{path: "backend remove", summary: "remove a backend from a cluster",
			flags:   []*flagSpec{fClusterID.withRequired(), fBackendID, fAddress.withHelp("backend address")},
			example: "backend remove --id shop --backend-id shop-0 --address 10.0.0.10:8000", build: buildBackendRemove},
	}
	for _, proto := range []string{"http", "https"} {
		addFlags := append([]*flagSpec{fAddress, fHostname, fPathPrefix, fPathRegex, fPathEquals, fMethod,
			fClusterID.withHelp("target cluster (none: requests are denied)"), fTags}, frontendPolicyFlags...)
		if proto == "https" {
			addFlags = append(addFlags, hstsFlags...)
		}
		verbs = append(verbs,
			&verb{path: "frontend " + proto + " add", summary: "add an " + strings.ToUpper(proto) + " routing rule",
				flags:     addFlags,
				exclusive: [][]string{{"path-prefix", "path-regex", "path-equals"}},
				example:   "frontend " + proto + " add --address 0.0.0.0:8080 --hostname shop.example.com --path-prefix /api --id shop --tags env=prod",
				build:     httpFrontendBuilder(proto, true)},
			&verb{path: "frontend " + proto + " remove", summary: "remove an " + strings.ToUpper(proto) + " routing rule",
				flags: []*flagSpec{fAddress, fHostname, fPathPrefix, fPathRegex, fPathEquals, fMethod,
					fClusterID.withHelp("target cluster (none: the deny rule)")},
				exclusive: [][]string{{"path-prefix", "path-regex", "path-equals"}},
				example:   "frontend " + proto + " remove --address 0.0.0.0:8080 --hostname shop.example.com --path-prefix /api --id shop",
				build:     httpFrontendBuilder(proto, false)},
		)
	}
	verbs = append(verbs,
		&verb{path: "frontend tcp add", summary: "bind a cluster to a TCP listener",
			flags:   []*flagSpec{fAddress, fClusterID.withRequired(), fTags},
			example: "frontend tcp add --address 0.0.0.0:5432 --id db", build: tcpFrontendBuilder(true)},
		&verb{path: "frontend tcp remove", summary: "unbind a cluster from a TCP listener",
			flags:   []*flagSpec{fAddress, fClusterID.withRequired()},
			example: "frontend tcp remove --address 0.0.0.0:5432 --id db", build: tcpFrontendBuilder(false)},
		&verb{path: "frontend http list", summary: "list HTTP frontends",
			flags:   []*flagSpec{fDomain.withHelp("hostname contains HOST")},
			example: "frontend http list --domain example.com", build: frontendListBuilder("http")},
		&verb{path: "frontend https list", summary: "list HTTPS frontends",
			flags:   []*flagSpec{fDomain.withHelp("hostname contains HOST")},
			example: "frontend https list", build: frontendListBuilder("https")},
		&verb{path: "frontend tcp list", summary: "list TCP frontends",
			example: "frontend tcp list", build: frontendListBuilder("tcp")},
		&verb{path: "frontend list", summary: "list frontends (all protocols unless filtered)",
			flags:   []*flagSpec{fListHTTP, fListHTTPS, fListTCP, fDomain.withHelp("hostname contains HOST (HTTP and HTTPS only)")},
			example: "frontend list --http --domain example.com", build: buildFrontendList},
	)
	for _, proto := range []string{"http", "https", "tcp"} {
		add := &verb{path: "listener " + proto + " add", summary: "declare " + article(proto) + " " + strings.ToUpper(proto) + " listener",
			flags:   []*flagSpec{fAddress.withHelp("bind address"), fPublicAddress, fExpectProxy, fFrontTimeout, fBackTimeout, fConnectTimeout},
			example: "listener " + proto + " add --address 0.0.0.0:8080 --front-timeout 60",
			build:   listenerAddBuilder(proto)}
		if proto != "tcp" {
			add.flags = append(add.flags, fRequestTimeout, fStickyName)
		}
		if proto == "https" {
			add.flags = append(add.flags, fTLSVersions)
		}
		update := &verb{path: "listener " + proto + " update", summary: "change settings of " + article(proto) + " " + strings.ToUpper(proto) + " listener in place (only the flags given)",
			flags:   listenerUpdateFlags(proto),
			example: "listener " + proto + " update --address 0.0.0.0:8080 --front-timeout 120",
			build:   listenerUpdateBuilder(proto)}
		if proto != "tcp" {
			update.load = loadAnswerFiles
		}
		verbs = append(verbs, add, update, &verb{path: "listener " + proto + " list",
			summary: "list the " + strings.ToUpper(proto) + " listeners",
			example: "listener " + proto + " list", build: buildListenerList, keep: keepListeners(proto)})
		for _, op := range []string{"remove", "activate", "deactivate"} {
			verbs = append(verbs, &verb{path: "listener " + proto + " " + op,
				summary: listenerOpSummary[op] + " " + article(proto) + " " + strings.ToUpper(proto) + " listener",
				flags:   []*flagSpec{fAddress},
				example: "listener " + proto + " " + op + " --address 0.0.0.0:8080",
				build:   listenerOpBuilder(proto, op)})
		}
	}
	verbs = append(verbs, udpVerbs()...) // udp.go
	verbs = append(verbs,
		&verb{path: "listener list", summary: "list all listeners",
			example: "listener list", build: buildListenerList},
		&verb{path: "connection-limit set", summary: "set the global cap on connections per cluster and client IP (runtime only, not saved)",
			flags: []*flagSpec{fConnLimit}, example: "connection-limit set --limit 100", build: buildConnLimitSet},
		&verb{path: "connection-limit show", summary: "show the global cap on connections per cluster and client IP",
			example: "connection-limit show", build: buildConnLimitShow},
		&verb{path: "connection-limit remove", summary: "remove the global cap on connections per cluster and client IP",
			example: "connection-limit remove", build: buildConnLimitRemove},
		&verb{path: "certificate list", summary: "list the certificates of the state, or those the workers serve (--workers)",
			flags:     []*flagSpec{fFingerprint.withHelp("only this certificate"), fDomain.withHelp("only certificates for exactly this name"), fWorkers},
			exclusive: [][]string{{"fingerprint", "domain"}},
			example:   "certificate list --domain shop.example.com", build: buildCertificateList},
		&verb{path: "certificate add", summary: "add a certificate to an HTTPS listener",
			flags: []*flagSpec{fAddress.withHelp("HTTPS listener address"), fCertificate.withRequired(), fCertificateChain, fKey,
				fCertTLSVersions, fNames},
			example: "certificate add --address 0.0.0.0:443 --certificate /etc/sozu/shop.pem --certificate-chain /etc/sozu/chain.pem --key /etc/sozu/shop.key",
			build:   buildCertificateAdd, load: loadCertificateFiles},
		&verb{path: "certificate replace", summary: "replace a certificate of an HTTPS listener by another, atomically",
			flags: []*flagSpec{fAddress.withHelp("HTTPS listener address"), fNewCertificate, fNewCertificateChain, fNewKey,
				fOldCertificate, fFingerprint.withHelp("SHA-256 of the certificate to replace (64 hex digits)"), fCertTLSVersions, fNames},
			exclusive:   [][]string{{"old-certificate", "fingerprint"}},
			oneRequired: [][]string{{"old-certificate", "fingerprint"}},
			example:     "certificate replace --address 0.0.0.0:443 --new-certificate /etc/sozu/shop-2.pem --new-key /etc/sozu/shop-2.key --old-certificate /etc/sozu/shop.pem",
			build:       buildCertificateReplace, load: loadCertificateFiles},
		&verb{path: "certificate remove", summary: "remove a certificate from an HTTPS listener",
			flags: []*flagSpec{fAddress.withHelp("HTTPS listener address"), fCertificate.withHelp("PEM file of the certificate to remove"),
				fFingerprint.withHelp("SHA-256 of the certificate to remove (64 hex digits)")},
			exclusive:   [][]string{{"certificate", "fingerprint"}},
			oneRequired: [][]string{{"certificate", "fingerprint"}},
			example:     "certificate remove --address 0.0.0.0:443 --certificate /etc/sozu/shop.pem",
			build:       buildCertificateRemove, load: loadCertificateFiles},
		&verb{path: "state save", summary: "save the routing state to a file (written by the supervisor)",
			flags: []*flagSpec{fFile}, example: "state save --file /var/lib/sozu/state.json", build: buildStateSave},
		&verb{path: "state load", summary: "replay a saved state file (read by the supervisor)",
			flags: []*flagSpec{fFile}, example: "state load --file /var/lib/sozu/state.json", build: buildStateLoad, noDeadline: true},
		&verb{path: "state stats", summary: "count the requests of each kind the state accepted since start",
			example: "state stats", build: buildStateStats},
		&verb{path: "reload", summary: "apply a configuration file's listeners, clusters, frontends, backends and certificates to the running proxy",
			flags: []*flagSpec{fReloadFile}, example: "reload --file /etc/sozu/config.toml", build: buildReload, noDeadline: true},
		&verb{path: "shutdown", summary: "stop the proxy, after open connections finish unless --hard",
			flags: []*flagSpec{fHard}, example: "shutdown --hard", build: buildShutdown, noDeadline: true},
		&verb{path: "metrics get", summary: "show the metrics merged over workers, or the names of the metrics (--list)",
			flags:   []*flagSpec{fMetricsList, fMetricsRefresh, fMetricsNames, fMetricsClusters, fMetricsBackends, fMetricsNoClus, fMetricsWorkers},
			example: "metrics get --clusters shop --names requests,backend_response_time", build: buildMetricsGet,
			refresh: func(v *values) time.Duration { return time.Duration(v.u64("refresh")) * time.Second }},
		&verb{path: "metrics enable", summary: "resume recording cluster and backend metrics in the workers",
			example: "metrics enable", build: metricsConfigure(command.MetricsConfiguration_ENABLED)},
		&verb{path: "metrics disable", summary: "stop recording cluster and backend metrics in the workers, as upstream (proxy metrics go on; what was recorded stays readable)",
			example: "metrics disable", build: metricsConfigure(command.MetricsConfiguration_DISABLED)},
		&verb{path: "metrics clear", summary: "zero the counters (the workers' and the supervisor's) and latency sketches (gauges stay)",
			example: "metrics clear", build: metricsConfigure(command.MetricsConfiguration_CLEAR)},
		&verb{path: "upgrade", summary: "hot upgrade: the supervisor runs the binary now at its path, or --worker N is replaced",
			flags: []*flagSpec{fUpgradeWorker}, example: "upgrade --worker 0", build: buildUpgrade, noDeadline: true},
		&verb{path: "events", summary: "follow the proxy's events, one line each, until interrupted or the proxy stops",
			example: "events --json", build: buildSubscribeEvents, stream: true},
		&verb{path: "top", summary: "live terminal view of the proxy: traffic, clusters, backends, listeners, certificates, events",
			example: "top", run: runTop},
		&verb{path: "logging", summary: "set the log filter of the supervisor and all workers (\"info\"; one level for the whole log: the answer names module directives without effect)",
			args: &argSpec{name: "FILTER", min: 1, max: 1}, example: "logging warn,sozu::http=debug", build: buildLogging},
		&verb{path: "sandbox", summary: "show each worker's uid, no_new_privs and seccomp state, read from /proc",
			example: "sandbox", run: runSandbox},
		&verb{path: "compliance", summary: "check the security posture against PCI DSS v4.0; exit 1 when a check fails",
			example: "compliance --json", run: runCompliance},
		&verb{path: "audit reopen", summary: "reopen the audit sinks (after logrotate moved them)",
			example: "audit reopen", build: buildAuditReopen},
		&verb{path: "audit verify", summary: "check the hash chain of a JSON audit file; names the first broken record",
			flags: []*flagSpec{fAuditKey, fAuditRotated, fAuditHead}, args: &argSpec{name: "FILE", min: 1, max: 1},
			example: "audit verify /var/log/sozu/audit.jsonl --key /var/log/sozu/audit.jsonl.key", run: runAuditVerify},
		&verb{path: "config check", summary: "check the configuration file (-c) and exit; warn about keys not in force",
			flags: []*flagSpec{fStrict}, example: "config check -c /etc/sozu/config.toml --strict", run: runConfigCheck},
		&verb{path: "help", summary: "show help for sozu or for a verb",
			args: &argSpec{name: "VERB", max: -1}, example: "help cluster add", run: runHelp},
		&verb{path: "completion", summary: "print a shell completion script",
			args:    &argSpec{name: "SHELL", min: 1, max: 1, choices: []string{"bash", "zsh", "fish"}},
			example: "completion bash", run: runCompletion},
		&verb{path: "version", summary: "print the version",
			example: "version", run: runVersion},
	)
	root = buildTree()
}

// article is the indefinite article before a protocol name read as letters.
func article(proto string) string {
	if strings.HasPrefix(proto, "http") {
		return "an"
	}
	return "a"
}

var listenerOpSummary = map[string]string{
	"remove":     "forget",
	"activate":   "start accepting on",
	"deactivate": "stop accepting on",
}

// node is one node of the command tree built from groups and verbs.
type node struct {
	path     string
	summary  string
	verb     *verb // nil for groups (and the root)
	children []*node
}

func (n *node) child(word string) *node {
	for _, c := range n.children {
		if c.name() == word {
			return c
		}
	}
	return nil
}

// name is the last word of the node's path.
func (n *node) name() string { return n.path[strings.LastIndexByte(n.path, ' ')+1:] }

// visibleChildren are the children shown in help and completion.
func (n *node) visibleChildren() []*node {
	var out []*node
	for _, c := range n.children {
		if c.verb == nil || !c.verb.hidden {
			out = append(out, c)
		}
	}
	return out
}

// root is the command tree, built by init from groups and verbs.
var root *node

// buildTree arranges groups and verbs by path; a verb or group whose parent
// is missing panics at start-up (and in tests).
func buildTree() *node {
	r := &node{summary: "Sōzu reverse proxy: daemon and operator CLI"}
	byPath := map[string]*node{"": r}
	add := func(n *node) {
		parent := ""
		if i := strings.LastIndexByte(n.path, ' '); i >= 0 {
			parent = n.path[:i]
		}
		p, ok := byPath[parent]
		if !ok {
			panic("sozu: verb table: no group " + parent + " for " + n.path)
		}
		if _, dup := byPath[n.path]; dup {
			panic("sozu: verb table: duplicate " + n.path)
		}
		byPath[n.path] = n
		p.children = append(p.children, n)
	}
	sorted := slices.Clone(groups)
	slices.SortStableFunc(sorted, func(a, b group) int {
		return strings.Count(a.path, " ") - strings.Count(b.path, " ")
	})
	for _, g := range sorted {
		add(&node{path: g.path, summary: g.summary})
	}
	for _, v := range verbs {
		add(&node{path: v.path, summary: v.summary, verb: v})
	}
	// Help lists children in verb-table order: order groups by the first
	// verb under them.
	first := map[string]int{}
	for i, v := range verbs {
		for p := v.path; ; {
			if _, ok := first[p]; !ok {
				first[p] = i
			}
			j := strings.LastIndexByte(p, ' ')
			if j < 0 {
				break
			}
			p = p[:j]
		}
	}
	var sortChildren func(n *node)
	sortChildren = func(n *node) {
		slices.SortStableFunc(n.children, func(a, b *node) int { return first[a.path] - first[b.path] })
		for _, c := range n.children {
			sortChildren(c)
		}
	}
	sortChildren(r)
	return r
}

// lookup returns the node at path ("" = root), or nil.
func lookup(path string) *node {
	n := root
	for w := range strings.FieldsSeq(path) {
		if n = n.child(w); n == nil {
			return nil
		}
	}
	return n
}

// flagByName finds a flag of v (or a global) by long or short name.
func (v *verb) flagByName(name string, short bool) *flagSpec {
	var list []*flagSpec
	if v != nil {
		list = v.flags
	}
	// A verb's own flag first: one that shadows a global (flagSpec.shadows)
	// is the verb's after the verb; TestVerbTable refuses any other clash.
	for _, f := range slices.Concat(list, globalFlags) {
		if (short && f.short != "" && f.short == name) || (!short && f.long == name) {
			return f
		}
	}
	return nil
}
