package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sozu-go/sozu/proto/command"
)

// flagKind says how a flag's value is read and validated.
type flagKind int

const (
	kindBool   flagKind = iota // no value; "--x" or "--x=true|false"
	kindString                 // non-empty UTF-8 text unless allowEmpty
	kindUint                   // decimal, 0..max
	kindAddr                   // ip:port or [ipv6]:port, port 1-65535
	kindEnum                   // one of choices (case-insensitive, '-' = '_')
	kindTags                   // k=v,k2=v2; repeatable, merged
)

// flagSpec describes one flag of a verb. Specs are shared between verbs
// (the same *flagSpec appears in several tables) so that a flag name means
// the same thing, with the same value kind, everywhere.
type flagSpec struct {
	long       string   // without the leading "--"
	short      string   // one letter, without "-"; "" = none
	kind       flagKind //
	metavar    string   // placeholder in usage lines ("ID", "IP:PORT")
	help       string   // one line
	required   bool     // the verb fails without it
	repeatable bool     // may be given more than once (values are merged)
	allowEmpty bool     // kindString: "" is a valid value
	min, max   uint64   // kindUint: smallest and largest accepted values
	choices    []string // kindEnum: canonical spellings
	// shadows: the flag deliberately has a global flag's name (upstream's
	// spelling); after the verb it is the verb's, before it the global.
	shadows bool
}

// takesValue reports whether the flag consumes a value.
func (f *flagSpec) takesValue() bool { return f.kind != kindBool }

// display is "--long" (or "-s/--long") for messages.
func (f *flagSpec) display() string { return "--" + f.long }

// withRequired returns a copy of f marked as required.
func (f flagSpec) withRequired() *flagSpec { f.required = true; return &f }

// withHelp returns a copy of f with another help line.
func (f flagSpec) withHelp(h string) *flagSpec { f.help = h; return &f }

// values holds the flags given on one command line, by long name, already
// converted: bool, string, uint64, *command.SocketAddress, string (enum,
// canonical), map[string]string (tags) or []string (repeatable strings).
type values struct {
	set map[string]any
	// args are the verb's positional arguments (checked against its
	// argSpec before build sees them).
	args []string
}

func (v *values) has(name string) bool { _, ok := v.set[name]; return ok }

func (v *values) str(name string) string { s, _ := v.set[name].(string); return s }

// optStr returns the value, or nil when the flag was not given.
func (v *values) optStr(name string) *string {
	if !v.has(name) {
		return nil
	}
	s := v.str(name)
	return &s
}

func (v *values) flag(name string) bool { b, _ := v.set[name].(bool); return b }

// u32 returns the value of a kindUint flag of max ≤ MaxUint32, or def.
func (v *values) u32(name string, def uint32) uint32 {
	if u, ok := v.set[name].(uint64); ok {
		return uint32(u)
	}
	return def
}

func (v *values) u64(name string) uint64 { u, _ := v.set[name].(uint64); return u }

// addr returns a fresh copy of an address flag, or nil when absent.
func (v *values) addr(name string) *command.SocketAddress {
	a, ok := v.set[name].(*command.SocketAddress)
	if !ok {
		return nil
	}
	ap, err := a.AddrPort()
	if err != nil {
		return nil
	}
	return command.NewSocketAddress(ap)
}

func (v *values) tags(name string) map[string]string {
	m, _ := v.set[name].(map[string]string)
	return maps.Clone(m)
}

func (v *values) list(name string) []string {
	l, _ := v.set[name].([]string)
	return slices.Clone(l)
}

// store converts raw (the text after the flag) and records it. It returns a
// message naming what is wrong with raw; the caller adds the flag's name.
func (v *values) store(f *flagSpec, raw string, explicit bool) error {
	prev, seen := v.set[f.long]
	if seen && !f.repeatable {
		return fmt.Errorf("%s given more than once", f.display())
	}
	if !utf8.ValidString(raw) {
		return invalidValue(f, raw, "not valid UTF-8")
	}
	var val any
	switch f.kind {
	case kindBool:
		if !explicit {
			val = true
			break
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return invalidValue(f, raw, "want true or false")
		}
		val = b
	case kindString:
		if raw == "" && !f.allowEmpty {
			return invalidValue(f, raw, "must not be empty")
		}
		if strings.ContainsFunc(raw, isControl) {
			return invalidValue(f, raw, "contains a control character")
		}
		if f.repeatable {
			l, _ := prev.([]string)
			val = append(l, raw)
		} else {
			val = raw
		}
	case kindUint:
		u, err := strconv.ParseUint(raw, 10, 64)
		if err != nil || u < f.min || u > f.max {
			return invalidValue(f, raw, fmt.Sprintf("want an integer from %d to %d", f.min, f.max))
		}
		val = u
	case kindAddr:
		a, err := parseAddress(raw)
		if err != nil {
			return invalidValue(f, raw, err.Error())
		}
		val = a
	case kindEnum:
		c, ok := matchChoice(f.choices, raw)
		if !ok {
			return invalidValue(f, raw, "want one of "+strings.Join(f.choices, ", "))
		}
		val = c
	case kindTags:
		m, _ := prev.(map[string]string)
		m = maps.Clone(m)
		if m == nil {
			m = map[string]string{}
		}
		if err := parseTags(raw, m); err != nil {
			return invalidValue(f, raw, err.Error())
		}
		val = m
	}
	if v.set == nil {
		v.set = map[string]any{}
	}
	v.set[f.long] = val
	return nil
}

func invalidValue(f *flagSpec, raw, why string) error {
	return fmt.Errorf("invalid value %q for %s: %s", raw, f.display(), why)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseAddress accepts "ip:port" or "[ipv6]:port" with a port in 1-65535.
func parseAddress(s string) (*command.SocketAddress, error) {
	if s != strings.TrimSpace(s) {
		return nil, fmt.Errorf("want ip:port or [ipv6]:port")
	}
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		return nil, fmt.Errorf("want ip:port or [ipv6]:port")
	}
	if a.GetPort() == 0 {
		return nil, fmt.Errorf("port must be from 1 to 65535")
	}
	return a, nil
}

// matchChoice finds raw among choices, ignoring case, treating '-' as '_'
// and accepting the spelling without separators ("roundrobin").
func matchChoice(choices []string, raw string) (string, bool) {
	norm := strings.ReplaceAll(strings.ToLower(raw), "-", "_")
	for _, c := range choices {
		if norm == c || norm == strings.ReplaceAll(c, "_", "") {
			return c, true
		}
	}
	return "", false
}

// parseTags adds "k=v,k2=v2" to m. Keys must be non-empty and unique;
// spaces around keys and values are trimmed.
func parseTags(s string, m map[string]string) error {
	for item := range strings.SplitSeq(s, ",") {
		k, val, ok := strings.Cut(item, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			return fmt.Errorf("want key=value[,key=value…]")
		}
		if strings.ContainsFunc(k+val, isControl) {
			return fmt.Errorf("contains a control character")
		}
		if _, dup := m[k]; dup {
			return fmt.Errorf("tag %q given more than once", k)
		}
		m[k] = val
	}
	return nil
}

// Shared flag specs. A verb table entry lists the ones it takes; copies made
// with withRequired/withHelp keep the name and kind.
var (
	fClusterID = &flagSpec{long: "id", short: "i", kind: kindString, metavar: "CLUSTER", help: "cluster id"}
	fAddress   = &flagSpec{long: "address", short: "a", kind: kindAddr, metavar: "IP:PORT", help: "listener address", required: true}
	fDomain    = &flagSpec{long: "domain", short: "d", kind: kindString, metavar: "HOST", help: "hostname (substring match for frontend list; host[/path] for cluster list)"}
	fTags      = &flagSpec{long: "tags", kind: kindTags, metavar: "K=V,…", help: "labels copied into access logs", repeatable: true}
	fFile      = &flagSpec{long: "file", short: "f", kind: kindString, metavar: "FILE", help: "state file path (relative to the current directory)", required: true}

	fLBPolicy = &flagSpec{long: "load-balancing-policy", kind: kindEnum, metavar: "POLICY", help: "backend selection",
		choices: []string{"round_robin", "random", "least_loaded", "power_of_two"}}
	fLoadMetric = &flagSpec{long: "load-metric", kind: kindEnum, metavar: "METRIC", help: "load measure for least_loaded and power_of_two",
		choices: []string{"connections", "requests", "connection_time"}}
	fStickySession     = &flagSpec{long: "sticky-session", short: "s", kind: kindBool, help: "pin a client to one backend with a cookie"}
	fHTTPSRedirect     = &flagSpec{long: "https-redirect", short: "r", kind: kindBool, help: "redirect plain HTTP to HTTPS"}
	fHTTPSRedirectPort = &flagSpec{long: "https-redirect-port", kind: kindUint, max: 65535, metavar: "PORT", help: "port in the HTTPS redirect Location"}
	fSendProxy         = &flagSpec{long: "send-proxy", kind: kindBool, help: "send a PROXY protocol v2 header to backends"}
	fExpectProxyClus   = &flagSpec{long: "expect-proxy", kind: kindBool, help: "clients send a PROXY protocol v2 header"}
	fHTTP2             = &flagSpec{long: "http2", kind: kindBool, help: "backends speak HTTP/2"}
	fConnLimit         = &flagSpec{long: "limit", kind: kindUint, max: math.MaxUint64, metavar: "N", required: true, help: "connections per cluster and client IP (0 = unlimited)"}
	fMaxConnsPerIP     = &flagSpec{long: "max-connections-per-ip", kind: kindUint, max: math.MaxUint64, metavar: "N", help: "per-client-IP connection cap (0 = unlimited)"}
	fRetryAfter        = &flagSpec{long: "retry-after", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "Retry-After on 429 answers (0 = omit)"}
	fWWWAuthenticate   = &flagSpec{long: "www-authenticate", kind: kindString, metavar: "REALM", help: "realm of 401 challenges"}
	fAuthorizedHash    = &flagSpec{long: "authorized-hash", kind: kindString, repeatable: true, metavar: "USER:SHA256HEX", help: "basic-auth credential"}

	fBackendID = &flagSpec{long: "backend-id", kind: kindString, metavar: "BACKEND", help: "backend id within the cluster", required: true}
	fStickyID  = &flagSpec{long: "sticky-id", short: "s", kind: kindString, metavar: "STICKY", help: "sticky-session cookie value"}
	fBackup    = &flagSpec{long: "backup", short: "b", kind: kindBool, help: "only used when the primary backends are down"}
	fWeight    = &flagSpec{long: "weight", kind: kindUint, max: math.MaxInt32, metavar: "N", help: "load-balancing weight"}

	fHostname   = &flagSpec{long: "hostname", kind: kindString, metavar: "HOST", help: "hostname to match (wildcards allowed)", required: true}
	fPathPrefix = &flagSpec{long: "path-prefix", short: "p", kind: kindString, allowEmpty: true, metavar: "PREFIX", help: "path starts with PREFIX (default: any path)"}
	fPathRegex  = &flagSpec{long: "path-regex", kind: kindString, metavar: "REGEX", help: "path matches REGEX"}
	fPathEquals = &flagSpec{long: "path-equals", kind: kindString, metavar: "PATH", help: "path equals PATH"}
	fMethod     = &flagSpec{long: "method", short: "m", kind: kindString, metavar: "METHOD", help: "restrict to one HTTP method"}

	fPublicAddress  = &flagSpec{long: "public-address", kind: kindAddr, metavar: "IP:PORT", help: "address advertised to backends"}
	fExpectProxy    = &flagSpec{long: "expect-proxy", kind: kindBool, help: "clients send a PROXY protocol header"}
	fStickyName     = &flagSpec{long: "sticky-name", kind: kindString, metavar: "NAME", help: "sticky-session cookie name (default " + defaultStickyName + ")"}
	fFrontTimeout   = &flagSpec{long: "front-timeout", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "client idle timeout"}
	fBackTimeout    = &flagSpec{long: "back-timeout", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "backend idle timeout"}
	fConnectTimeout = &flagSpec{long: "connect-timeout", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "backend connect timeout"}
	fRequestTimeout = &flagSpec{long: "request-timeout", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "time to receive a whole request"}
	fTLSVersions    = &flagSpec{long: "tls-versions", kind: kindString, metavar: "V,…", help: "TLS versions, e.g. TLSv1.2,TLSv1.3 (default both)"}

	fCertificate         = &flagSpec{long: "certificate", kind: kindString, metavar: "FILE", help: "PEM certificate file (leaf first; more certificates in it start the chain)"}
	fCertificateChain    = &flagSpec{long: "certificate-chain", kind: kindString, metavar: "FILE", help: "PEM file of the intermediate certificates"}
	fKey                 = &flagSpec{long: "key", kind: kindString, metavar: "FILE", help: "PEM private key file (unencrypted)", required: true}
	fNewCertificate      = &flagSpec{long: "new-certificate", kind: kindString, metavar: "FILE", help: "PEM file of the new certificate (leaf first)", required: true}
	fNewCertificateChain = &flagSpec{long: "new-certificate-chain", kind: kindString, metavar: "FILE", help: "PEM file of the new intermediate certificates"}
	fNewKey              = &flagSpec{long: "new-key", kind: kindString, metavar: "FILE", help: "PEM file of the new private key (unencrypted)", required: true}
	fOldCertificate      = &flagSpec{long: "old-certificate", kind: kindString, metavar: "FILE", help: "PEM file of the certificate to replace"}
	fFingerprint         = &flagSpec{long: "fingerprint", short: "f", kind: kindString, metavar: "HEX", help: "certificate SHA-256 fingerprint (64 hex digits)"}
	fCertTLSVersions     = fTLSVersions.withHelp("TLS versions recorded with it, e.g. TLSv1.3 (the listener's versions are what apply)")
	fNames               = &flagSpec{long: "names", kind: kindString, metavar: "NAME,…", help: "SNI names to serve it for (default: its SAN DNS names, else its CN)"}
	fWorkers             = &flagSpec{long: "workers", short: "w", kind: kindBool, help: "ask the workers what they serve, per listener (default: the supervisor's state)"}

	fListHTTP  = &flagSpec{long: "http", kind: kindBool, help: "HTTP frontends"}
	fListHTTPS = &flagSpec{long: "https", kind: kindBool, help: "HTTPS frontends"}
	fListTCP   = &flagSpec{long: "tcp", kind: kindBool, help: "TCP (and UDP) frontends"}

	fAuditKey     = &flagSpec{long: "key", kind: kindString, metavar: "KEYFILE", help: "HMAC key file (default: audit_hmac_key_file of -c, else FILE.key)"}
	fAuditRotated = &flagSpec{long: "rotated", kind: kindBool, help: "FILE is a piece rotated off (or the file after a rotation): it may start at any anchor, named in the report"}
	fAuditHead    = &flagSpec{long: "head", kind: kindString, metavar: "HEADFILE", help: "sealed head the file must reach (default with -c: KEYFILE.head when FILE is audit_logs_json_target)"}

	// metrics get: upstream's flags (lists are comma-separated, repeatable).
	fMetricsList     = &flagSpec{long: "list", short: "l", kind: kindBool, help: "list the metric names instead of their values"}
	fMetricsRefresh  = &flagSpec{long: "refresh", short: "r", kind: kindUint, min: 1, max: 86400, metavar: "SECONDS", help: "ask again every SECONDS (1 to 86400) until interrupted"}
	fMetricsNames    = &flagSpec{long: "names", short: "n", kind: kindString, repeatable: true, metavar: "NAME,…", help: "only these metrics"}
	fMetricsClusters = &flagSpec{long: "clusters", short: "k", kind: kindString, repeatable: true, metavar: "CLUSTER,…", help: "only these clusters, without the proxy-level metrics"}
	fMetricsBackends = &flagSpec{long: "backends", short: "b", kind: kindString, repeatable: true, metavar: "BACKEND,…", help: "only these backends (under the clusters holding them), without proxy-level or cluster metrics"}
	fMetricsNoClus   = &flagSpec{long: "no-clusters", kind: kindBool, help: "only the proxy-level metrics, no cluster or backend"}
	fMetricsWorkers  = &flagSpec{long: "workers", short: "w", kind: kindBool, help: "each worker's metrics too, besides the merged ones"}

	fStrict = &flagSpec{long: "strict", kind: kindBool, help: "fail (exit 78) when a key written is not in force"}
	fHard   = &flagSpec{long: "hard", kind: kindBool, help: "do not wait for connections to finish"}
	// upgrade: the worker to replace (its id, as sozu status lists it).
	fUpgradeWorker = &flagSpec{long: "worker", kind: kindUint, max: math.MaxUint32, metavar: "ID", help: "replace this worker (id from sozu status) instead of upgrading the main process"}

	// cluster health-check set: upstream's flags and defaults.
	fHCURI       = &flagSpec{long: "uri", short: "u", kind: kindString, metavar: "PATH", help: "path the probe requests, e.g. /health", required: true}
	fHCInterval  = &flagSpec{long: "interval", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "at most this long between two probes of a backend (default 10)"}
	fHCTimeout   = &flagSpec{long: "timeout", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", shadows: true, help: "a probe not answered within SECONDS fails (default 5; before the verb, --timeout is the CLI's own, in ms)"}
	fHCHealthy   = &flagSpec{long: "healthy-threshold", kind: kindUint, max: math.MaxUint32, metavar: "N", help: "consecutive successes that bring a backend back (default 3)"}
	fHCUnhealthy = &flagSpec{long: "unhealthy-threshold", kind: kindUint, max: math.MaxUint32, metavar: "N", help: "consecutive failures that take a backend out (default 3)"}
	fHCExpected  = &flagSpec{long: "expected-status", kind: kindUint, max: 599, metavar: "CODE", help: "status the probe wants; 0 = any 2xx (default 0)"}
)

// Global flags, accepted before or after the verb.
var (
	gConfig  = &flagSpec{long: "config", short: "c", kind: kindString, metavar: "FILE", help: "configuration file (default $SOZU_CONFIG, else " + defaultConfigPath + ")"}
	gTimeout = &flagSpec{long: "timeout", short: "t", kind: kindUint, max: math.MaxInt64 / 1_000_000, metavar: "MS", help: "give up after MS milliseconds; 0 = wait forever (default ctl_command_timeout when set, else 10000; none for state load, reload and shutdown)"}
	gJSON    = &flagSpec{long: "json", short: "j", kind: kindBool, help: "print the answer as one JSON document on stdout"}
	gHelp    = &flagSpec{long: "help", short: "h", kind: kindBool, help: "show help"}

	globalFlags = []*flagSpec{gConfig, gTimeout, gJSON, gHelp}
)
