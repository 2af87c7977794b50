package state

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// All query results are copies owned by the caller.

// Cluster returns the cluster's configuration with its HTTP and HTTPS
// frontends (by key), TCP and UDP frontends and backends (canonical order),
// or nil when no cluster has that id.
func (s *ConfigState) Cluster(id string) *command.ClusterInformation {
	c, ok := s.clusters[id]
	if !ok {
		return nil
	}
	info := &command.ClusterInformation{
		Configuration: clone(c),
		TcpFrontends:  cloneAll(s.tcpFronts[id]),
		UdpFrontends:  cloneAll(s.udpFronts[id]),
		Backends:      cloneAll(s.backends[id]),
	}
	info.HttpFrontends = frontendsOf(s.httpFronts, id)
	info.HttpsFrontends = frontendsOf(s.httpsFronts, id)
	return info
}

// frontendsOf returns copies of the frontends in m that route to cluster
// id, in key order. Only the matches are sorted: one pass over m.
func frontendsOf(m map[string]*command.RequestHttpFrontend, id string) []*command.RequestHttpFrontend {
	var keys []string
	for k, f := range m {
		if routesTo(f, id) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []*command.RequestHttpFrontend
	for _, k := range keys {
		out = append(out, clone(m[k]))
	}
	return out
}

// ClusterConfig returns a copy of cluster id's configuration, or nil. It
// costs one copy, where Cluster gathers the cluster's frontends from the
// whole state.
func (s *ConfigState) ClusterConfig(id string) *command.Cluster {
	c, ok := s.clusters[id]
	if !ok {
		return nil
	}
	return clone(c)
}

func routesTo(f *command.RequestHttpFrontend, id string) bool {
	return f.ClusterId != nil && f.GetClusterId() == id
}

// groupFronts returns the frontends of m per cluster id, each list in key
// order; deny frontends (no cluster) are left out. The lists alias the state.
func groupFronts(m map[string]*command.RequestHttpFrontend) map[string][]*command.RequestHttpFrontend {
	out := map[string][]*command.RequestHttpFrontend{}
	for _, k := range sortedKeys(m) {
		if f := m[k]; f.ClusterId != nil {
			out[f.GetClusterId()] = append(out[f.GetClusterId()], f)
		}
	}
	return out
}

// ClustersByDomain returns, ordered by id, the existing clusters that have
// an HTTP or HTTPS frontend whose hostname matches hostname and, when path
// is not nil, whose path rule matches *path. Hostnames compare without
// case; a frontend hostname "*.example.com" matches exactly one extra label
// ("a.example.com", not "a.b.example.com"). A path matches a rule equal to
// it (upstream's only test) or that the rule accepts: prefix, equality, or
// regular expression (an invalid expression accepts nothing more).
func (s *ConfigState) ClustersByDomain(hostname string, path *string) []*command.ClusterInformation {
	ids := map[string]bool{}
	for _, m := range []map[string]*command.RequestHttpFrontend{s.httpFronts, s.httpsFronts} {
		for _, f := range m {
			if f.ClusterId == nil || !hostMatches(f.GetHostname(), hostname) {
				continue
			}
			if path != nil && !pathMatches(f.GetPath(), *path) {
				continue
			}
			ids[f.GetClusterId()] = true
		}
	}
	var out []*command.ClusterInformation
	for _, id := range sortedKeys(ids) {
		if info := s.Cluster(id); info != nil {
			out = append(out, info)
		}
	}
	return out
}

func hostMatches(pattern, host string) bool {
	if strings.EqualFold(pattern, host) {
		return true
	}
	suffix, ok := strings.CutPrefix(pattern, "*.")
	if !ok {
		return false
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && label != "" && strings.EqualFold(rest, suffix)
}

func pathMatches(rule *command.PathRule, path string) bool {
	v := rule.GetValue()
	if path == v {
		return true
	}
	switch rule.GetKind() {
	case command.PathRuleKind_PREFIX:
		return strings.HasPrefix(path, v)
	case command.PathRuleKind_REGEX:
		re, err := regexp.Compile(v)
		return err == nil && re.MatchString(path)
	}
	return false
}

// ListFrontends returns the frontends selected by f: HTTP and HTTPS by key,
// TCP and UDP by cluster id then address and tags. With no protocol flag
// set (or f nil) every protocol is listed; UDP frontends follow the tcp
// flag. Domain, when set, keeps HTTP(S) frontends whose hostname contains
// it and excludes every TCP and UDP frontend.
func (s *ConfigState) ListFrontends(f *command.FrontendFilters) *command.ListedFrontends {
	all := !f.GetHttp() && !f.GetHttps() && !f.GetTcp()
	hasDomain := f != nil && f.Domain != nil
	out := &command.ListedFrontends{}
	keep := func(fr *command.RequestHttpFrontend) bool {
		return !hasDomain || strings.Contains(fr.GetHostname(), f.GetDomain())
	}
	if all || f.GetHttp() {
		for _, k := range sortedKeys(s.httpFronts) {
			if fr := s.httpFronts[k]; keep(fr) {
				out.HttpFrontends = append(out.HttpFrontends, clone(fr))
			}
		}
	}
	if all || f.GetHttps() {
		for _, k := range sortedKeys(s.httpsFronts) {
			if fr := s.httpsFronts[k]; keep(fr) {
				out.HttpsFrontends = append(out.HttpsFrontends, clone(fr))
			}
		}
	}
	if (all || f.GetTcp()) && !hasDomain {
		for _, id := range sortedKeys(s.tcpFronts) {
			out.TcpFrontends = append(out.TcpFrontends, cloneAll(s.tcpFronts[id])...)
		}
		for _, id := range sortedKeys(s.udpFronts) {
			out.UdpFrontends = append(out.UdpFrontends, cloneAll(s.udpFronts[id])...)
		}
	}
	return out
}

// ListListeners returns every listener, keyed by its address as
// SocketAddress.Display formats it ("0.0.0.0:80", "[::]:443").
func (s *ConfigState) ListListeners() *command.ListenersList {
	out := &command.ListenersList{
		HttpListeners:  map[string]*command.HttpListenerConfig{},
		HttpsListeners: map[string]*command.HttpsListenerConfig{},
		TcpListeners:   map[string]*command.TcpListenerConfig{},
		UdpListeners:   map[string]*command.UdpListenerConfig{},
	}
	byDisplay(out.HttpListeners, s.httpListeners)
	byDisplay(out.HttpsListeners, s.httpsListeners)
	byDisplay(out.TcpListeners, s.tcpListeners)
	byDisplay(out.UdpListeners, s.udpListeners)
	return out
}

func byDisplay[T listenerConfig](dst map[string]T, src map[netip.AddrPort]T) {
	for _, l := range src {
		dst[l.GetAddress().Display()] = clone(l)
	}
}

// HTTPListener returns the HTTP listener at addr, or nil.
func (s *ConfigState) HTTPListener(addr *command.SocketAddress) *command.HttpListenerConfig {
	return lookup(s.httpListeners, addr)
}

// HTTPSListener returns the HTTPS listener at addr, or nil.
func (s *ConfigState) HTTPSListener(addr *command.SocketAddress) *command.HttpsListenerConfig {
	return lookup(s.httpsListeners, addr)
}

// TCPListener returns the TCP listener at addr, or nil.
func (s *ConfigState) TCPListener(addr *command.SocketAddress) *command.TcpListenerConfig {
	return lookup(s.tcpListeners, addr)
}

// UDPListener returns the UDP listener at addr, or nil.
func (s *ConfigState) UDPListener(addr *command.SocketAddress) *command.UdpListenerConfig {
	return lookup(s.udpListeners, addr)
}

func lookup[T listenerConfig](m map[netip.AddrPort]T, addr *command.SocketAddress) T {
	var zero T
	if addr == nil {
		return zero
	}
	ap, err := addr.AddrPort()
	if err != nil {
		return zero
	}
	l, ok := m[ap]
	if !ok {
		return zero
	}
	return clone(l)
}

// Certificates returns the stored certificates keyed by fingerprint. With
// filters nil or empty, all of them; with domain, those whose names contain
// exactly that name; else with fingerprint, the one with that fingerprint
// (compared without hex case). A certificate stored on several addresses
// appears once.
func (s *ConfigState) Certificates(filters *command.QueryCertificatesFilters) *command.CertificatesWithFingerprints {
	out := &command.CertificatesWithFingerprints{Certs: map[string]*command.CertificateAndKey{}}
	byDomain := filters != nil && filters.Domain != nil
	byFingerprint := !byDomain && filters != nil && filters.Fingerprint != nil
	want := strings.ToLower(filters.GetFingerprint())
	for _, ap := range sortedAddrs(s.certs) {
		for fp, ck := range s.certs[ap] {
			switch {
			case byDomain:
				if !slices.Contains(ck.GetNames(), filters.GetDomain()) {
					continue
				}
			case byFingerprint:
				if fp != want {
					continue
				}
			}
			out.Certs[fp] = clone(ck)
		}
	}
	return out
}

// HealthChecks returns the health check of every cluster that has one, or
// only of cluster *clusterID when it is not nil.
func (s *ConfigState) HealthChecks(clusterID *string) *command.HealthChecksList {
	out := &command.HealthChecksList{Map: map[string]*command.HealthCheckConfig{}}
	for id, c := range s.clusters {
		if c.HealthCheck == nil || (clusterID != nil && *clusterID != id) {
			continue
		}
		out.Map[id] = clone(c.HealthCheck)
	}
	return out
}

// Query answers the queries the state alone can answer, as both the
// supervisor (its "main" answer) and every worker give them:
// query_cluster_by_id, query_clusters_by_domain, query_clusters_hashes.
// ok is false for any other request.
func (s *ConfigState) Query(req *command.Request) (rc *command.ResponseContent, ok bool) {
	switch r := req.GetRequestType().(type) {
	case *command.Request_QueryClusterById:
		infos := &command.ClusterInformations{}
		if ci := s.Cluster(r.QueryClusterById); ci != nil {
			infos.Vec = append(infos.Vec, ci)
		}
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: infos}}, true
	case *command.Request_QueryClustersByDomain:
		q := r.QueryClustersByDomain
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{
			Vec: s.ClustersByDomain(q.GetHostname(), q.Path)}}}, true
	case *command.Request_QueryClustersHashes:
		return &command.ResponseContent{ContentType: &command.ResponseContent_ClusterHashes{ClusterHashes: &command.ClusterHashes{Map: s.ClusterHashes()}}}, true
	}
	return nil, false
}

// Sizes returns how many clusters, backends and frontends (HTTP, HTTPS,
// TCP and UDP) the state holds, without copying anything.
func (s *ConfigState) Sizes() (clusters, backends, frontends int) {
	for _, l := range s.backends {
		backends += len(l)
	}
	frontends = len(s.httpFronts) + len(s.httpsFronts)
	for _, l := range s.tcpFronts {
		frontends += len(l)
	}
	for _, l := range s.udpFronts {
		frontends += len(l)
	}
	return len(s.clusters), backends, frontends
}

// BackendIDs returns the backend ids of each cluster, by cluster id (a
// cluster without backends has an empty set), without copying the
// configuration.
func (s *ConfigState) BackendIDs() map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(s.clusters))
	for id := range s.clusters {
		ids := make(map[string]bool, len(s.backends[id]))
		for _, b := range s.backends[id] {
			ids[b.GetBackendId()] = true
		}
		out[id] = ids
	}
	return out
}
