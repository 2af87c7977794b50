package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Small value types that check themselves while the document is decoded
// (encoding.TextUnmarshaler), so a bad value is reported at its own line and
// column. Enumerations accept upstream's spelling in any letter case.

// address is an "ip:port" or "[ipv6]:port" socket address.
type address struct{ netip.AddrPort }

// UnmarshalText parses an address; zones and ports out of range are refused.
func (a *address) UnmarshalText(b []byte) error {
	s := string(b)
	ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid socket address %q: want ip:port or [ipv6]:port", s)
	}
	if ap.Addr().Zone() != "" {
		return fmt.Errorf("invalid socket address %q: IPv6 zones are not supported", s)
	}
	// An IPv4-mapped IPv6 address is IPv4 on the wire; compare it as such.
	a.AddrPort = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return nil
}

// proto returns the wire form of the address.
func (a address) proto() *command.SocketAddress { return command.NewSocketAddress(a.AddrPort) }

// enumText matches s against names (case-insensitively) and returns the index.
func enumText(kind string, s string, names ...string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("invalid %s %q: want one of %s", kind, s, quoteList(names))
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// ListenerProtocol is a listener's protocol: http, https, tcp or udp.
type ListenerProtocol int

// Listener protocols.
const (
	ProtocolHTTP ListenerProtocol = iota
	ProtocolHTTPS
	ProtocolTCP
	ProtocolUDP
)

var listenerProtocolNames = []string{"http", "https", "tcp", "udp"}

func (p ListenerProtocol) String() string { return listenerProtocolNames[p] }

// UnmarshalText parses http, https, tcp or udp.
func (p *ListenerProtocol) UnmarshalText(b []byte) error {
	i, err := enumText("listener protocol", string(b), listenerProtocolNames...)
	*p = ListenerProtocol(i)
	return err
}

// listenerType is the ListenerType the wire uses for this protocol.
func (p ListenerProtocol) listenerType() command.ListenerType {
	return [...]command.ListenerType{
		command.ListenerType_HTTP, command.ListenerType_HTTPS,
		command.ListenerType_TCP, command.ListenerType_UDP,
	}[p]
}

// clusterProtocol is a cluster's protocol: http (also for https), tcp or udp.
type clusterProtocol int

const (
	clusterHTTP clusterProtocol = iota
	clusterTCP
	clusterUDP
)

var clusterProtocolNames = []string{"http", "tcp", "udp"}

func (p clusterProtocol) String() string { return clusterProtocolNames[p] }

func (p *clusterProtocol) UnmarshalText(b []byte) error {
	i, err := enumText("cluster protocol", string(b), clusterProtocolNames...)
	*p = clusterProtocol(i)
	return err
}

// loadBalancing is a LoadBalancingAlgorithms name (ROUND_ROBIN, …).
type loadBalancing command.LoadBalancingAlgorithms

func (l *loadBalancing) UnmarshalText(b []byte) error {
	return protoEnum("load balancing algorithm", b, command.LoadBalancingAlgorithms_value, (*int32)(l))
}

// loadMetric is a LoadMetric name (CONNECTIONS, REQUESTS, CONNECTION_TIME).
type loadMetric command.LoadMetric

func (l *loadMetric) UnmarshalText(b []byte) error {
	return protoEnum("load metric", b, command.LoadMetric_value, (*int32)(l))
}

// rulePosition is a RulePosition name (PRE, POST, TREE).
type rulePosition command.RulePosition

func (r *rulePosition) UnmarshalText(b []byte) error {
	return protoEnum("rule position", b, command.RulePosition_value, (*int32)(r))
}

// udpAffinity is a UdpAffinityKey name (SOURCE_IP, SOURCE_IP_PORT).
type udpAffinity command.UdpAffinityKey

func (a *udpAffinity) UnmarshalText(b []byte) error {
	return protoEnum("UDP affinity key", b, command.UdpAffinityKey_value, (*int32)(a))
}

// udpHealthMode is a UdpHealthMode name (HEALTH_OFF, TCP_PROBE, UDP_PROBE).
type udpHealthMode command.UdpHealthMode

func (m *udpHealthMode) UnmarshalText(b []byte) error {
	return protoEnum("UDP health mode", b, command.UdpHealthMode_value, (*int32)(m))
}

// pathType is a PathRuleKind name (PREFIX, REGEX, EQUALS).
type pathType command.PathRuleKind

func (p *pathType) UnmarshalText(b []byte) error {
	return protoEnum("path type", b, command.PathRuleKind_value, (*int32)(p))
}

// protoEnum parses an enum value name of the command schema.
func protoEnum(kind string, b []byte, values map[string]int32, out *int32) error {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return values[names[i]] < values[names[j]] })
	i, err := enumText(kind, string(b), names...)
	if err == nil {
		*out = values[names[i]]
	}
	return err
}

// tlsVersion is a TLS version in upstream's configuration spelling
// (TLS_V12, TLS_V13, …); the schema's own names (TLS_V1_2) are accepted too.
type tlsVersion command.TlsVersion

var tlsVersionNames = []string{"SSL_V2", "SSL_V3", "TLS_V10", "TLS_V11", "TLS_V12", "TLS_V13"}

func (t *tlsVersion) UnmarshalText(b []byte) error {
	s := string(b)
	if v, ok := command.TlsVersion_value[strings.ToUpper(s)]; ok {
		*t = tlsVersion(v)
		return nil
	}
	i, err := enumText("TLS version", s, tlsVersionNames...)
	*t = tlsVersion(i) // same order as the schema enum
	return err
}

// redirectPolicy is a frontend redirect policy: forward, permanent,
// unauthorized (upstream), and found / permanent_redirect (schema values).
type redirectPolicy command.RedirectPolicy

func (r *redirectPolicy) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), "-", "_")
	i, err := enumText("redirect policy", s, "forward", "permanent", "unauthorized", "found", "permanent_redirect")
	if err != nil {
		return fmt.Errorf("invalid redirect policy %q: want one of %s", b,
			quoteList([]string{"forward", "permanent", "unauthorized", "found", "permanent_redirect"}))
	}
	*r = redirectPolicy(i) // same order as the schema enum
	return nil
}

// redirectScheme is use-same, use-http or use-https (underscores accepted).
type redirectScheme command.RedirectScheme

func (r *redirectScheme) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), "_", "-")
	i, err := enumText("redirect scheme", s, "use-same", "use-http", "use-https")
	if err != nil {
		return fmt.Errorf("invalid redirect scheme %q: want one of \"use-same\", \"use-http\", \"use-https\"", b)
	}
	*r = redirectScheme(i)
	return nil
}

// headerPosition is request, response or both.
type headerPosition command.HeaderPosition

func (h *headerPosition) UnmarshalText(b []byte) error {
	i, err := enumText("header position", string(b), "request", "response", "both")
	*h = headerPosition(i + 1) // REQUEST = 1 in the schema
	return err
}

// accessLogFormat is ascii or protobuf (upstream's, as in the schema), or
// json (ours: accessLogJSON, never sent in a ServerConfig).
type accessLogFormat command.ProtobufAccessLogFormat

// accessLogJSON is the json format; the schema's enumeration stops at
// Protobuf = 2.
const accessLogJSON accessLogFormat = 3

func (a *accessLogFormat) UnmarshalText(b []byte) error {
	i, err := enumText("access log format", string(b), "ascii", "protobuf", "json")
	*a = accessLogFormat(i + 1) // Ascii = 1 in the schema
	return err
}

// accessLogQuery is mask, keep or drop (worker/logmask).
type accessLogQuery string

func (a *accessLogQuery) UnmarshalText(b []byte) error {
	i, err := enumText("access log query mode", string(b), "mask", "keep", "drop")
	*a = accessLogQuery([]string{"mask", "keep", "drop"}[i])
	return err
}

// metricDetail is process, frontend, cluster or backend.
type metricDetail command.MetricDetail

func (m *metricDetail) UnmarshalText(b []byte) error {
	i, err := enumText("metrics detail", string(b), "process", "frontend", "cluster", "backend")
	*m = metricDetail(i) // same order as the schema enum
	return err
}
