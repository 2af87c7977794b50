package state

import (
	"cmp"
	"slices"

	"github.com/sozu-go/sozu/proto/command"
)

// addCluster upserts a cluster: the whole configuration is replaced. An
// empty cluster_id and an invalid inline health check are refused.
func (s *ConfigState) addCluster(c *command.Cluster) *Error {
	c = orEmpty(c)
	if c.GetClusterId() == "" {
		return invalidValue("cluster_id", "must not be empty")
	}
	if c.HealthCheck != nil {
		if e := validateHealthCheck(c.HealthCheck); e != nil {
			return e
		}
	}
	fillRequired(c.ProtoReflect())
	s.clusters[c.GetClusterId()] = c
	return nil
}

// removeCluster deletes the cluster entry only: its frontends and backends
// stay in the state (and in saved state), as upstream does.
func (s *ConfigState) removeCluster(id string) *Error {
	if _, ok := s.clusters[id]; !ok {
		return notFound("Cluster", id)
	}
	delete(s.clusters, id)
	return nil
}

// setHealthCheck validates the health check, then attaches it to an
// existing cluster.
func (s *ConfigState) setHealthCheck(set *command.SetHealthCheck) *Error {
	set = orEmpty(set)
	hc := orEmpty(set.GetConfig())
	if e := validateHealthCheck(hc); e != nil {
		return e
	}
	c, ok := s.clusters[set.GetClusterId()]
	if !ok {
		return notFound("Cluster", set.GetClusterId())
	}
	fillRequired(hc.ProtoReflect())
	c.HealthCheck = hc
	return nil
}

// removeHealthCheck detaches the health check of an existing cluster;
// a cluster without one is accepted unchanged.
func (s *ConfigState) removeHealthCheck(id string) *Error {
	c, ok := s.clusters[id]
	if !ok {
		return notFound("Cluster", id)
	}
	c.HealthCheck = nil
	return nil
}

// addBackend upserts a backend on (backend_id, address) within its cluster.
// The cluster need not exist (upstream does not check either).
func (s *ConfigState) addBackend(b *command.AddBackend) *Error {
	b = orEmpty(b)
	ap, e := addrKey("address", b.GetAddress())
	if e != nil {
		return e
	}
	fillRequired(b.ProtoReflect())
	id := b.GetClusterId()
	l := slices.DeleteFunc(s.backends[id], func(x *command.AddBackend) bool {
		return x.GetBackendId() == b.GetBackendId() && sameAddr(x.GetAddress(), ap)
	})
	l = append(l, b)
	slices.SortFunc(l, compareBackends)
	s.backends[id] = l
	return nil
}

// removeBackend removes the backend matching both backend_id and address.
// A cluster without backends is NotFound (named by backend_id); no match is
// NoChange.
func (s *ConfigState) removeBackend(r *command.RemoveBackend) *Error {
	r = orEmpty(r)
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	id := r.GetClusterId()
	l := s.backends[id]
	if len(l) == 0 {
		return notFound("Backend", r.GetBackendId())
	}
	i := slices.IndexFunc(l, func(x *command.AddBackend) bool {
		return x.GetBackendId() == r.GetBackendId() && sameAddr(x.GetAddress(), ap)
	})
	if i < 0 {
		return noChange()
	}
	l = slices.Delete(l, i, i+1)
	if len(l) == 0 {
		delete(s.backends, id)
	} else {
		s.backends[id] = l
	}
	return nil
}

// compareBackends orders backends of one cluster by (backend_id, sticky_id,
// weight, backup, address), unset optional values first, addresses IPv4
// before IPv6, then IP, then port (docs/protocol.md §4.4 step 11).
func compareBackends(a, b *command.AddBackend) int {
	return cmp.Or(
		cmp.Compare(a.GetBackendId(), b.GetBackendId()),
		compareOpt(a.StickyId, b.StickyId),
		compareWeight(a.GetLoadBalancingParameters(), b.GetLoadBalancingParameters()),
		compareOpt(boolRank(a.Backup), boolRank(b.Backup)),
		compareAddr(a.GetAddress(), b.GetAddress()),
	)
}

func compareOpt[T cmp.Ordered](a, b *T) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

func compareWeight(a, b *command.LoadBalancingParams) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(a.GetWeight(), b.GetWeight())
}

func boolRank(b *bool) *int {
	if b == nil {
		return nil
	}
	r := 0
	if *b {
		r = 1
	}
	return &r
}

// compareAddr orders socket addresses as upstream's SocketAddr does.
// Addresses that do not fit (never stored) compare by their raw port.
func compareAddr(a, b *command.SocketAddress) int {
	x := a.GetIp().Netip()
	y := b.GetIp().Netip()
	return cmp.Or(x.Compare(y), cmp.Compare(a.GetPort(), b.GetPort()))
}
