package main

import (
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Defaults applied to listeners declared from the command line. They match
// the configuration file's defaults (docs/protocol.md §3.2).
const (
	defaultStickyName     = "SOZUBALANCEID"
	defaultFrontTimeout   = 60
	defaultBackTimeout    = 30
	defaultConnectTimeout = 3
	defaultRequestTimeout = 10
	defaultTLS13Tickets   = 4
)

// This file turns parsed flags into requests. Every builder sets all the
// proto2 `required` fields, so the result always marshals.

func buildStatus(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}, nil
}

func buildClusterList(v *values) (*command.Request, error) {
	switch {
	case v.has("id"):
		return &command.Request{RequestType: &command.Request_QueryClusterById{QueryClusterById: v.str("id")}}, nil
	case v.has("domain"):
		host, path, hasPath := strings.Cut(v.str("domain"), "/")
		if host == "" {
			return nil, fmt.Errorf("invalid value %q for --domain: want HOST or HOST/PATH", v.str("domain"))
		}
		q := &command.QueryClusterByDomain{Hostname: ptr(host)}
		if hasPath {
			q.Path = ptr("/" + path)
		}
		return &command.Request{RequestType: &command.Request_QueryClustersByDomain{QueryClustersByDomain: q}}, nil
	default:
		return &command.Request{RequestType: &command.Request_QueryClustersHashes{QueryClustersHashes: &command.QueryClustersHashes{}}}, nil
	}
}

var lbPolicies = map[string]command.LoadBalancingAlgorithms{
	"round_robin":  command.LoadBalancingAlgorithms_ROUND_ROBIN,
	"random":       command.LoadBalancingAlgorithms_RANDOM,
	"least_loaded": command.LoadBalancingAlgorithms_LEAST_LOADED,
	"power_of_two": command.LoadBalancingAlgorithms_POWER_OF_TWO,
}

var loadMetrics = map[string]command.LoadMetric{
	"connections":     command.LoadMetric_CONNECTIONS,
	"requests":        command.LoadMetric_REQUESTS,
	"connection_time": command.LoadMetric_CONNECTION_TIME,
}

func buildClusterAdd(v *values) (*command.Request, error) {
	c := &command.Cluster{
		ClusterId:     ptr(v.str("id")),
		StickySession: ptr(v.flag("sticky-session")),
		HttpsRedirect: ptr(v.flag("https-redirect")),
		LoadBalancing: ptr(command.LoadBalancingAlgorithms_ROUND_ROBIN),
	}
	if v.has("load-balancing-policy") {
		c.LoadBalancing = ptr(lbPolicies[v.str("load-balancing-policy")])
	}
	if v.has("load-metric") {
		c.LoadMetric = ptr(loadMetrics[v.str("load-metric")])
	}
	switch {
	case v.flag("send-proxy"):
		c.ProxyProtocol = ptr(command.ProxyProtocolConfig_SEND_HEADER)
	case v.flag("expect-proxy"):
		c.ProxyProtocol = ptr(command.ProxyProtocolConfig_EXPECT_HEADER)
	}
	if v.has("http2") {
		c.Http2 = ptr(v.flag("http2"))
	}
	if v.has("https-redirect-port") {
		c.HttpsRedirectPort = ptr(v.u32("https-redirect-port", 0))
	}
	if v.has("max-connections-per-ip") {
		c.MaxConnectionsPerIp = ptr(v.u64("max-connections-per-ip"))
	}
	if v.has("retry-after") {
		c.RetryAfter = ptr(v.u32("retry-after", 0))
	}
	c.WwwAuthenticate = v.optStr("www-authenticate")
	for _, h := range v.list("authorized-hash") {
		user, hash, ok := strings.Cut(h, ":")
		if !ok || user == "" || !isHex(hash, 64) {
			return nil, fmt.Errorf("invalid value %q for --authorized-hash: want USER:SHA256HEX (64 hex digits)", h)
		}
		c.AuthorizedHashes = append(c.AuthorizedHashes, h)
	}
	answers, err := answerFlags(v)
	if err != nil {
		return nil, err
	}
	c.Answers = answers
	if v.has("answer-503") {
		c.Answer_503 = ptr("") // the file's content, set by loadAnswerFiles
	}
	return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: c}}, nil
}

func buildClusterRemove(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: v.str("id")}}, nil
}

func buildConnLimitSet(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_SetMaxConnectionsPerIp{SetMaxConnectionsPerIp: v.u64("limit")}}, nil
}

func buildConnLimitShow(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_QueryMaxConnectionsPerIp{QueryMaxConnectionsPerIp: &command.QueryMaxConnectionsPerIp{}}}, nil
}

func buildConnLimitRemove(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_SetMaxConnectionsPerIp{SetMaxConnectionsPerIp: 0}}, nil
}

func buildBackendAdd(v *values) (*command.Request, error) {
	b := &command.AddBackend{
		ClusterId: ptr(v.str("id")),
		BackendId: ptr(v.str("backend-id")),
		Address:   v.addr("address"),
		StickyId:  v.optStr("sticky-id"),
	}
	if v.has("weight") {
		b.LoadBalancingParameters = &command.LoadBalancingParams{Weight: ptr(int32(v.u64("weight")))}
	}
	if v.has("backup") {
		b.Backup = ptr(v.flag("backup"))
	}
	return &command.Request{RequestType: &command.Request_AddBackend{AddBackend: b}}, nil
}

func buildBackendRemove(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_RemoveBackend{RemoveBackend: &command.RemoveBackend{
		ClusterId: ptr(v.str("id")),
		BackendId: ptr(v.str("backend-id")),
		Address:   v.addr("address"),
	}}}, nil
}

// httpFrontendBuilder builds add/remove for "http" or "https" frontends.
func httpFrontendBuilder(proto string, add bool) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		path := &command.PathRule{Kind: ptr(command.PathRuleKind_PREFIX), Value: ptr(v.str("path-prefix"))}
		switch {
		case v.has("path-regex"):
			path = &command.PathRule{Kind: ptr(command.PathRuleKind_REGEX), Value: ptr(v.str("path-regex"))}
		case v.has("path-equals"):
			path = &command.PathRule{Kind: ptr(command.PathRuleKind_EQUALS), Value: ptr(v.str("path-equals"))}
		}
		f := &command.RequestHttpFrontend{
			ClusterId: v.optStr("id"),
			Address:   v.addr("address"),
			Hostname:  ptr(v.str("hostname")),
			Path:      path,
			Method:    v.optStr("method"),
			Position:  ptr(command.RulePosition_TREE),
			Tags:      v.tags("tags"),
		}
		if add {
			if err := applyFrontendPolicy(f, v); err != nil {
				return nil, err
			}
		}
		r := &command.Request{}
		switch {
		case proto == "http" && add:
			r.RequestType = &command.Request_AddHttpFrontend{AddHttpFrontend: f}
		case proto == "http":
			r.RequestType = &command.Request_RemoveHttpFrontend{RemoveHttpFrontend: f}
		case add:
			r.RequestType = &command.Request_AddHttpsFrontend{AddHttpsFrontend: f}
		default:
			r.RequestType = &command.Request_RemoveHttpsFrontend{RemoveHttpsFrontend: f}
		}
		return r, nil
	}
}

func tcpFrontendBuilder(add bool) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		f := &command.RequestTcpFrontend{
			ClusterId: ptr(v.str("id")),
			Address:   v.addr("address"),
			Tags:      v.tags("tags"),
		}
		if add {
			return &command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: f}}, nil
		}
		return &command.Request{RequestType: &command.Request_RemoveTcpFrontend{RemoveTcpFrontend: f}}, nil
	}
}

// buildFrontendList: no protocol flag means all protocols.
func buildFrontendList(v *values) (*command.Request, error) {
	h, s, t := v.flag("http"), v.flag("https"), v.flag("tcp")
	if !h && !s && !t {
		h, s, t = true, true, true
	}
	return &command.Request{RequestType: &command.Request_ListFrontends{ListFrontends: &command.FrontendFilters{
		Http: ptr(h), Https: ptr(s), Tcp: ptr(t), Domain: v.optStr("domain"),
	}}}, nil
}

var tlsVersions = map[string]command.TlsVersion{
	"tlsv1.2": command.TlsVersion_TLS_V1_2, "tls1.2": command.TlsVersion_TLS_V1_2, "tls_v1_2": command.TlsVersion_TLS_V1_2, "tls_v12": command.TlsVersion_TLS_V1_2,
	"tlsv1.3": command.TlsVersion_TLS_V1_3, "tls1.3": command.TlsVersion_TLS_V1_3, "tls_v1_3": command.TlsVersion_TLS_V1_3, "tls_v13": command.TlsVersion_TLS_V1_3,
}

// parseTLSVersions reads "TLSv1.2,TLSv1.3" (or upstream's spelling,
// "TLS_V12,TLS_V13"). Older versions are refused:
// the proxy speaks TLS 1.2 and 1.3 only.
func parseTLSVersions(s string) ([]command.TlsVersion, error) {
	var out []command.TlsVersion
	seen := map[command.TlsVersion]bool{}
	for item := range strings.SplitSeq(s, ",") {
		tv, ok := tlsVersions[strings.ToLower(strings.TrimSpace(item))]
		if !ok {
			return nil, fmt.Errorf("invalid value %q for --tls-versions: want TLSv1.2 and/or TLSv1.3, comma separated", s)
		}
		if !seen[tv] {
			seen[tv] = true
			out = append(out, tv)
		}
	}
	return out, nil
}

func listenerAddBuilder(proto string) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		front := v.u32("front-timeout", defaultFrontTimeout)
		back := v.u32("back-timeout", defaultBackTimeout)
		connect := v.u32("connect-timeout", defaultConnectTimeout)
		request := v.u32("request-timeout", defaultRequestTimeout)
		sticky := defaultStickyName
		if v.has("sticky-name") {
			sticky = v.str("sticky-name")
		}
		switch proto {
		case "http":
			return &command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: &command.HttpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"),
				ExpectProxy: ptr(v.flag("expect-proxy")), StickyName: ptr(sticky),
				FrontTimeout: ptr(front), BackTimeout: ptr(back), ConnectTimeout: ptr(connect), RequestTimeout: ptr(request),
				Active: ptr(false),
			}}}, nil
		case "https":
			versions := []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3}
			if v.has("tls-versions") {
				var err error
				if versions, err = parseTLSVersions(v.str("tls-versions")); err != nil {
					return nil, err
				}
			}
			return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"),
				ExpectProxy: ptr(v.flag("expect-proxy")), StickyName: ptr(sticky),
				FrontTimeout: ptr(front), BackTimeout: ptr(back), ConnectTimeout: ptr(connect), RequestTimeout: ptr(request),
				Active: ptr(false), Versions: versions, SendTls13Tickets: ptr(uint64(defaultTLS13Tickets)),
			}}}, nil
		default:
			return &command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: &command.TcpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"),
				ExpectProxy:  ptr(v.flag("expect-proxy")),
				FrontTimeout: ptr(front), BackTimeout: ptr(back), ConnectTimeout: ptr(connect),
				Active: ptr(false),
			}}}, nil
		}
	}
}

var listenerTypes = map[string]command.ListenerType{
	"http": command.ListenerType_HTTP, "https": command.ListenerType_HTTPS, "tcp": command.ListenerType_TCP,
	"udp": command.ListenerType_UDP,
}

func listenerOpBuilder(proto, op string) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		lt := ptr(listenerTypes[proto])
		switch op {
		case "remove":
			return &command.Request{RequestType: &command.Request_RemoveListener{RemoveListener: &command.RemoveListener{
				Address: v.addr("address"), Proxy: lt}}}, nil
		case "activate":
			return &command.Request{RequestType: &command.Request_ActivateListener{ActivateListener: &command.ActivateListener{
				Address: v.addr("address"), Proxy: lt, FromScm: ptr(false)}}}, nil
		default:
			return &command.Request{RequestType: &command.Request_DeactivateListener{DeactivateListener: &command.DeactivateListener{
				Address: v.addr("address"), Proxy: lt, ToScm: ptr(false)}}}, nil
		}
	}
}

func buildListenerList(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}}, nil
}

// buildStateSave and buildStateLoad keep the path as given; the run step
// makes a relative path absolute against the CLI's working directory
// (the supervisor would resolve it against its own).
func buildStateSave(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_SaveState{SaveState: v.str("file")}}, nil
}

func buildStateLoad(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_LoadState{LoadState: v.str("file")}}, nil
}

// buildUpgrade is `sozu upgrade`: upgrade_main, or upgrade_worker with
// --worker.
func buildUpgrade(v *values) (*command.Request, error) {
	if v.has("worker") {
		return &command.Request{RequestType: &command.Request_UpgradeWorker{UpgradeWorker: v.u32("worker", 0)}}, nil
	}
	return &command.Request{RequestType: &command.Request_UpgradeMain{UpgradeMain: &command.UpgradeMain{}}}, nil
}

func buildShutdown(v *values) (*command.Request, error) {
	if v.flag("hard") {
		return &command.Request{RequestType: &command.Request_HardStop{HardStop: &command.HardStop{}}}, nil
	}
	return &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}}, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// frontendListBuilder lists the frontends of one protocol.
func frontendListBuilder(proto string) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		f := &command.FrontendFilters{Http: ptr(proto == "http"), Https: ptr(proto == "https"), Tcp: ptr(proto == "tcp")}
		if proto != "tcp" {
			f.Domain = v.optStr("domain")
		}
		return &command.Request{RequestType: &command.Request_ListFrontends{ListFrontends: f}}, nil
	}
}

// keepListeners trims a listener list to one protocol.
func keepListeners(proto string) func(*command.Response) {
	return func(r *command.Response) {
		l := r.GetContent().GetListenersList()
		if l == nil {
			return
		}
		if proto != "http" {
			l.HttpListeners = nil
		}
		if proto != "https" {
			l.HttpsListeners = nil
		}
		if proto != "tcp" {
			l.TcpListeners = nil
		}
		if proto != "udp" {
			l.UdpListeners = nil
		}
	}
}
