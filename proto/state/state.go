// Package state holds ConfigState, the proxy configuration (listeners,
// clusters, frontends, backends, certificates) that the supervisor and every worker keep.
package state

import (
	"maps"
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// ConfigState is the configuration that requests build up: the supervisor
// applies every mutating request to it before fanning the request out, and
// each worker applies the same requests to its own copy, so both converge.
//
// It is not safe for concurrent use: one goroutine owns it (the
// supervisor's state actor; a worker's control loop). Messages handed to
// Dispatch are copied, and every accessor returns copies, so callers never
// share memory with the state.
type ConfigState struct {
	clusters map[string]*command.Cluster
	// backends per cluster id, kept sorted (see compareBackends). A cluster
	// without backends has no entry.
	backends map[string][]*command.AddBackend

	httpListeners  map[netip.AddrPort]*command.HttpListenerConfig
	httpsListeners map[netip.AddrPort]*command.HttpsListenerConfig
	tcpListeners   map[netip.AddrPort]*command.TcpListenerConfig
	udpListeners   map[netip.AddrPort]*command.UdpListenerConfig

	// HTTP and HTTPS frontends by key "<ip:port>;<hostname>;<P|R|=><path>[;<method>]".
	httpFronts  map[string]*command.RequestHttpFrontend
	httpsFronts map[string]*command.RequestHttpFrontend
	// TCP and UDP frontends per cluster id, kept sorted by (address, tags).
	tcpFronts map[string][]*command.RequestTcpFrontend
	udpFronts map[string][]*command.RequestUdpFrontend

	// certificates per listener address, then lowercase hex fingerprint. An
	// address never given a certificate has no entry; one whose
	// certificates were all removed keeps an empty one (replaceCertificate).
	certs map[netip.AddrPort]map[string]*command.CertificateAndKey
	// certExpiry holds the expired_at given with a certificate, when one
	// was (same keys as certs; runtime only, never generated).
	certExpiry map[netip.AddrPort]map[string]int64

	counts map[string]int32
}

// New returns an empty state.
func New() *ConfigState {
	return &ConfigState{
		clusters:       map[string]*command.Cluster{},
		backends:       map[string][]*command.AddBackend{},
		httpListeners:  map[netip.AddrPort]*command.HttpListenerConfig{},
		httpsListeners: map[netip.AddrPort]*command.HttpsListenerConfig{},
		tcpListeners:   map[netip.AddrPort]*command.TcpListenerConfig{},
		udpListeners:   map[netip.AddrPort]*command.UdpListenerConfig{},
		httpFronts:     map[string]*command.RequestHttpFrontend{},
		httpsFronts:    map[string]*command.RequestHttpFrontend{},
		tcpFronts:      map[string][]*command.RequestTcpFrontend{},
		udpFronts:      map[string][]*command.RequestUdpFrontend{},
		certs:          map[netip.AddrPort]map[string]*command.CertificateAndKey{},
		certExpiry:     map[netip.AddrPort]map[string]int64{},
		counts:         map[string]int32{},
	}
}

// Clone returns a deep copy of the state, request counts included.
func (s *ConfigState) Clone() *ConfigState {
	c := New()
	cloneInto(c.clusters, s.clusters)
	cloneInto(c.httpListeners, s.httpListeners)
	cloneInto(c.httpsListeners, s.httpsListeners)
	cloneInto(c.tcpListeners, s.tcpListeners)
	cloneInto(c.udpListeners, s.udpListeners)
	cloneInto(c.httpFronts, s.httpFronts)
	cloneInto(c.httpsFronts, s.httpsFronts)
	for id, l := range s.backends {
		c.backends[id] = cloneAll(l)
	}
	for id, l := range s.tcpFronts {
		c.tcpFronts[id] = cloneAll(l)
	}
	for id, l := range s.udpFronts {
		c.udpFronts[id] = cloneAll(l)
	}
	for ap, byFP := range s.certs {
		m := map[string]*command.CertificateAndKey{}
		cloneInto(m, byFP)
		c.certs[ap] = m
	}
	for ap, byFP := range s.certExpiry {
		c.certExpiry[ap] = maps.Clone(byFP)
	}
	maps.Copy(c.counts, s.counts)
	return c
}

// Dispatch applies one request to the state, following docs/protocol.md §5.3.
// On refusal it returns an *Error and leaves the state unchanged; a nil or
// variant-less request is refused with kind Empty, and a verb for which
// IsStateVerb is false with kind NotStateVerb. Every string must be valid
// UTF-8 and every identifier field pass CheckIdentifier (stringFields),
// or the request is refused as InvalidValue naming the field, before any
// lookup; an enum field holding a value its type does not declare is
// refused as WrongFieldValue (checkRequestEnums). Logging, configure_metrics and set/query_max_connections_per_ip
// are accepted without any change.
// Every accepted request is counted (see RequestCounts). req is not
// modified or retained.
func (s *ConfigState) Dispatch(req *command.Request) error {
	if req.GetRequestType() == nil {
		return emptyRequest()
	}
	if classify(req) == notState {
		return notStateVerb(command.VerbName(req))
	}
	if e := checkRequestStrings(req.ProtoReflect()); e != nil {
		return e
	}
	if e := checkRequestEnums(req.ProtoReflect(), ""); e != nil {
		return e
	}
	req = clone(req)
	if e := s.apply(req); e != nil {
		return e
	}
	s.counts[command.VerbName(req)]++
	return nil
}

func (s *ConfigState) apply(req *command.Request) *Error {
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCluster:
		return s.addCluster(r.AddCluster)
	case *command.Request_RemoveCluster:
		return s.removeCluster(r.RemoveCluster)
	case *command.Request_SetHealthCheck:
		return s.setHealthCheck(r.SetHealthCheck)
	case *command.Request_RemoveHealthCheck:
		return s.removeHealthCheck(r.RemoveHealthCheck)
	case *command.Request_AddBackend:
		return s.addBackend(r.AddBackend)
	case *command.Request_RemoveBackend:
		return s.removeBackend(r.RemoveBackend)

	case *command.Request_AddHttpFrontend:
		return addHTTPFront(s.httpFronts, "HttpFrontend", r.AddHttpFrontend)
	case *command.Request_RemoveHttpFrontend:
		return removeHTTPFront(s.httpFronts, "HttpFrontend", r.RemoveHttpFrontend)
	case *command.Request_AddHttpsFrontend:
		return addHTTPFront(s.httpsFronts, "HttpsFrontend", r.AddHttpsFrontend)
	case *command.Request_RemoveHttpsFrontend:
		return removeHTTPFront(s.httpsFronts, "HttpsFrontend", r.RemoveHttpsFrontend)
	case *command.Request_AddTcpFrontend:
		return addL4Front(s.tcpFronts, "TcpFrontend", orEmpty(r.AddTcpFrontend))
	case *command.Request_RemoveTcpFrontend:
		return removeL4Front(s.tcpFronts, "TcpFrontend", orEmpty(r.RemoveTcpFrontend))
	case *command.Request_AddUdpFrontend:
		return addL4Front(s.udpFronts, "UdpFrontend", orEmpty(r.AddUdpFrontend))
	case *command.Request_RemoveUdpFrontend:
		return removeL4Front(s.udpFronts, "UdpFrontend", orEmpty(r.RemoveUdpFrontend))

	case *command.Request_AddHttpListener:
		return addListener(s.httpListeners, "HttpListener", orEmpty(r.AddHttpListener))
	case *command.Request_AddHttpsListener:
		l := orEmpty(r.AddHttpsListener)
		if e := normalizeListenerCertificate(l); e != nil {
			return e
		}
		return addListener(s.httpsListeners, "HttpsListener", l)
	case *command.Request_AddTcpListener:
		return addListener(s.tcpListeners, "TcpListener", orEmpty(r.AddTcpListener))
	case *command.Request_AddUdpListener:
		return addListener(s.udpListeners, "UdpListener", orEmpty(r.AddUdpListener))
	case *command.Request_UpdateHttpListener:
		return updateListener(s.httpListeners, "HttpListener", orEmpty(r.UpdateHttpListener))
	case *command.Request_UpdateHttpsListener:
		return updateListener(s.httpsListeners, "HttpsListener", orEmpty(r.UpdateHttpsListener))
	case *command.Request_UpdateTcpListener:
		return updateListener(s.tcpListeners, "TcpListener", orEmpty(r.UpdateTcpListener))
	case *command.Request_UpdateUdpListener:
		return updateListener(s.udpListeners, "UdpListener", orEmpty(r.UpdateUdpListener))
	case *command.Request_RemoveListener:
		return s.removeListener(orEmpty(r.RemoveListener))
	case *command.Request_ActivateListener:
		m := orEmpty(r.ActivateListener)
		return s.setActive(m, m.GetAddress(), true)
	case *command.Request_DeactivateListener:
		m := orEmpty(r.DeactivateListener)
		return s.setActive(m, m.GetAddress(), false)

	case *command.Request_AddCertificate:
		return s.addCertificate(orEmpty(r.AddCertificate))
	case *command.Request_ReplaceCertificate:
		return s.replaceCertificate(orEmpty(r.ReplaceCertificate))
	case *command.Request_RemoveCertificate:
		return s.removeCertificate(orEmpty(r.RemoveCertificate))
	}
	// Verbs accepted without change: Logging, configure_metrics,
	// set/query_max_connections_per_ip.
	return nil
}

// RequestCounts returns, per request kind (command.VerbName, e.g.
// "AddCluster"), how many requests Dispatch accepted. Refused requests are
// not counted. Upstream records a kind's first occurrence as 2 and counts
// refused requests too; we count exactly. The map is a copy.
func (s *ConfigState) RequestCounts() map[string]int32 {
	return maps.Clone(s.counts)
}

type verbClass int

const (
	notState verbClass = iota // not applied to the state
	inert                     // accepted by the state without change
	mutating                  // may change the state
)

func classify(req *command.Request) verbClass {
	switch req.GetRequestType().(type) {
	case *command.Request_AddCluster, *command.Request_RemoveCluster,
		*command.Request_SetHealthCheck, *command.Request_RemoveHealthCheck,
		*command.Request_AddBackend, *command.Request_RemoveBackend,
		*command.Request_AddHttpFrontend, *command.Request_RemoveHttpFrontend,
		*command.Request_AddHttpsFrontend, *command.Request_RemoveHttpsFrontend,
		*command.Request_AddTcpFrontend, *command.Request_RemoveTcpFrontend,
		*command.Request_AddUdpFrontend, *command.Request_RemoveUdpFrontend,
		*command.Request_AddHttpListener, *command.Request_AddHttpsListener,
		*command.Request_AddTcpListener, *command.Request_AddUdpListener,
		*command.Request_UpdateHttpListener, *command.Request_UpdateHttpsListener,
		*command.Request_UpdateTcpListener, *command.Request_UpdateUdpListener,
		*command.Request_RemoveListener,
		*command.Request_ActivateListener, *command.Request_DeactivateListener,
		*command.Request_AddCertificate, *command.Request_ReplaceCertificate,
		*command.Request_RemoveCertificate:
		return mutating
	case *command.Request_Logging, *command.Request_ConfigureMetrics,
		*command.Request_SetMaxConnectionsPerIp, *command.Request_QueryMaxConnectionsPerIp:
		return inert
	}
	return notState
}

// IsStateVerb reports whether the supervisor must dispatch req to the state
// before fanning it out: true for every verb that Mutates, and for Logging,
// configure_metrics and set/query_max_connections_per_ip, which the state
// accepts without change (and counts). False for queries, listings, stops,
// upgrades, state save/load and an empty request.
func IsStateVerb(req *command.Request) bool { return classify(req) != notState }

// Mutates reports whether req is a verb that may change the configuration
// held by the state (clusters, backends, frontends, listeners,
// certificates, health checks) and is therefore saved, audited and sent to
// new workers.
func Mutates(req *command.Request) bool { return classify(req) == mutating }

// clone deep-copies a message; a typed nil stays nil.
func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }

func cloneAll[T proto.Message](l []T) []T {
	out := make([]T, len(l))
	for i, m := range l {
		out[i] = clone(m)
	}
	return out
}

func cloneInto[K comparable, T proto.Message](dst, src map[K]T) {
	for k, m := range src {
		dst[k] = clone(m)
	}
}

// orEmpty returns m, or a new empty message when m is nil (a request whose
// variant is set to a nil message reads as an all-default payload, as
// upstream decodes it).
func orEmpty[T proto.Message](m T) T {
	if m.ProtoReflect().IsValid() {
		return m
	}
	return m.ProtoReflect().Type().New().Interface().(T)
}
