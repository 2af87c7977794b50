package backends

import (
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/sozu-go/sozu/proto/command"
)

// Algorithm is a load-balancing algorithm (upstream's
// LoadBalancingAlgorithms). Every algorithm honours the backends' weights.
type Algorithm uint8

const (
	RoundRobin  Algorithm = iota // smooth weighted rotation
	Random                       // random pick, proportional to the weights
	LeastLoaded                  // least load (Metric) per unit of weight
	PowerOfTwo                   // the less loaded (per weight) of two weighted random picks
	HRW                          // weighted rendezvous hashing of the client's IP
	Maglev                       // Maglev consistent hashing of the client's IP
)

var algorithmNames = [...]string{"round_robin", "random", "least_loaded", "power_of_two", "hrw", "maglev"}

func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// Metric is the load LeastLoaded and PowerOfTwo compare (upstream's
// LoadMetric).
type Metric uint8

const (
	// Connections: connections to the backend in use. Upstream's default.
	Connections Metric = iota
	// Requests: requests in flight; the same as Connections over HTTP/1.1,
	// where a backend connection carries one request at a time.
	Requests
	// ConnectionTime: the peak-weighted moving average of connect times,
	// times one more than the connections in use.
	ConnectionTime
)

// Policy is how a cluster picks its backends.
type Policy struct {
	Algorithm Algorithm
	Metric    Metric
	// HTTP2: the backends are spoken to in HTTP/2 with prior knowledge
	// (h2.go): Connect returns a stream of a pooled connection, and the
	// load metrics count streams (requests) where they count connections.
	HTTP2 bool
}

// PolicyFrom reads a cluster's load_balancing, load_metric and http2.
func PolicyFrom(c *command.Cluster) Policy {
	p := Policy{HTTP2: c.GetHttp2()}
	switch c.GetLoadBalancing() {
	case command.LoadBalancingAlgorithms_RANDOM:
		p.Algorithm = Random
	case command.LoadBalancingAlgorithms_LEAST_LOADED:
		p.Algorithm = LeastLoaded
	case command.LoadBalancingAlgorithms_POWER_OF_TWO:
		p.Algorithm = PowerOfTwo
	case command.LoadBalancingAlgorithms_HRW:
		p.Algorithm = HRW
	case command.LoadBalancingAlgorithms_MAGLEV:
		p.Algorithm = Maglev
	}
	switch c.GetLoadMetric() {
	case command.LoadMetric_REQUESTS:
		p.Metric = Requests
	case command.LoadMetric_CONNECTION_TIME:
		p.Metric = ConnectionTime
	}
	return p
}

// pool is one list of a Set (primaries or backups) with what its policy
// precomputes.
type pool struct {
	l     []*Backend
	equal bool    // every weight is the same: plain rotation
	table []int32 // Maglev lookup table (indices into l); nil for other policies

	mu      sync.Mutex // guards current
	current []int64    // smooth weighted round robin state
}

func newPool(l []*Backend, alg Algorithm) *pool {
	p := &pool{l: l, equal: true, current: make([]int64, len(l))}
	for _, b := range l {
		if b.weight.Load() != l[0].weight.Load() {
			p.equal = false
		}
	}
	if alg == Maglev {
		p.table = maglevTable(l)
	}
	return p
}

// pick selects a backend not in tried: among the primaries that are up (or
// down but due for a retry), else the backups that are, else (so that a
// recovered backend is found without active health checks) among all the
// untried backends, primaries first. nil when every backend was tried.
func (s *Set) pick(tried []*Backend, key uint64) *Backend {
	b, _ := s.pickRound(tried, key)
	return b
}

// pickRound is pick, and reports whether the backend came from its last
// two rounds (fail open): no untried backend was in rotation.
func (s *Set) pickRound(tried []*Backend, key uint64) (b *Backend, failOpen bool) {
	for i, c := range [...]struct {
		p      *pool
		upOnly bool
	}{{s.primaries, true}, {s.backups, true}, {s.primaries, false}, {s.backups, false}} {
		if b := s.choose(c.p, tried, c.upOnly, key); b != nil {
			return b, i >= 2
		}
	}
	return nil, false
}

// Pick selects a backend of s for a flow whose balancing key is key, as
// Connect's first attempt would, without connecting: UDP flows use it
// (worker/udp), whose backends are reached by datagrams. nil when s has no
// backend. Unlike Connect it does not count a fail-open pick: the caller
// may refuse it (FailedOpen).
func (s *Set) Pick(key uint64) *Backend {
	if s == nil {
		return nil
	}
	return s.pick(nil, key)
}

// FailedOpen counts a routing decision of s that took a backend out of
// rotation because none was in it (upstream's backends.fail_open):
// Connect counts its own; worker/udp calls it for a flow it admits so.
func (s *Set) FailedOpen() { s.reg.failOpen.Add(1) }

func eligible(b *Backend, tried []*Backend, upOnly bool) bool {
	if upOnly && (b.hcDown.Load() || b.down.Load() && !b.retryDue()) {
		return false
	}
	for _, t := range tried {
		if t == b {
			return false
		}
	}
	return true
}

// weighted reports whether weights apply to a pick among l: false when no
// eligible backend has a positive weight, and then every backend counts 1
// (weight 0 means "only when nothing else can serve").
func weighted(l []*Backend, tried []*Backend, upOnly bool) bool {
	for _, b := range l {
		if b.weight.Load() > 0 && eligible(b, tried, upOnly) {
			return true
		}
	}
	return false
}

// weightOf is b's weight in a pick (see weighted).
func weightOf(b *Backend, useWeights bool) int64 {
	if !useWeights {
		return 1
	}
	return max(b.weight.Load(), 0)
}

// choose applies the policy to the eligible backends of p.
func (s *Set) choose(p *pool, tried []*Backend, upOnly bool, key uint64) *Backend {
	l := p.l
	if len(l) == 0 {
		return nil
	}
	switch s.Policy.Algorithm {
	case Random:
		return weightedRandom(l, tried, upOnly)
	case LeastLoaded:
		useW := weighted(l, tried, upOnly)
		var best *Backend
		for _, b := range l {
			if eligible(b, tried, upOnly) && weightOf(b, useW) > 0 &&
				(best == nil || s.lighter(b, best, useW)) {
				best = b
			}
		}
		return best
	case PowerOfTwo:
		useW := weighted(l, tried, upOnly)
		a := weightedRandom(l, tried, upOnly)
		b := weightedRandom(l, tried, upOnly)
		if a == nil || (b != nil && s.lighter(b, a, useW)) {
			return b
		}
		return a
	case HRW:
		return hrw(l, tried, upOnly, key)
	case Maglev:
		return p.maglev(tried, upOnly, key)
	}
	if p.equal || !weighted(l, tried, upOnly) {
		return s.nth(l, tried, upOnly, s.rr.Add(1)-1)
	}
	return p.smooth(tried, upOnly)
}

// lighter reports whether a carries less load per unit of weight than b.
func (s *Set) lighter(a, b *Backend, useW bool) bool {
	return a.load(s.Policy.Metric)*weightOf(b, useW) < b.load(s.Policy.Metric)*weightOf(a, useW)
}

func weightedRandom(l []*Backend, tried []*Backend, upOnly bool) *Backend {
	useW := weighted(l, tried, upOnly)
	total := int64(0)
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			total += weightOf(b, useW)
		}
	}
	if total == 0 {
		return nil
	}
	x := rand.Int64N(total)
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			if w := weightOf(b, useW); x < w {
				return b
			} else {
				x -= w
			}
		}
	}
	return nil // the eligible set changed meanwhile
}

// smooth is the smooth weighted round robin (as nginx does it): each pick,
// every eligible backend gains its weight, the richest is picked and pays
// the total. Backends get turns in proportion to their weights, spread out
// rather than in runs.
func (p *pool) smooth(tried []*Backend, upOnly bool) *Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, int64(0)
	for i, b := range p.l {
		w := b.weight.Load()
		if w <= 0 || !eligible(b, tried, upOnly) {
			continue
		}
		p.current[i] += w
		total += w
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	p.current[best] -= total
	return p.l[best]
}

// nth picks the backend of turn i among the eligible backends of l.
//
// A first pick (nothing tried yet) counts eligible backends only: the
// backends up share the turns of those down evenly, instead of handing
// them all to their successor (upstream's round robin runs over the
// available backends the same way). A retry takes the first eligible
// backend from position i mod len(l), as turns advance one per pick: the
// retries after a failing backend still up go round like the turns.
func (s *Set) nth(l []*Backend, tried []*Backend, upOnly bool, i uint64) *Backend {
	n := len(l)
	if len(tried) > 0 {
		start := int(i % uint64(n))
		for k := 0; k < n; k++ {
			if b := l[(start+k)%n]; eligible(b, tried, upOnly) {
				return b
			}
		}
		return nil
	}
	m := 0
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			m++
		}
	}
	if m == 0 {
		return nil
	}
	k := int(i % uint64(m))
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			if k == 0 {
				return b
			}
			k--
		}
	}
	return nil // the eligible set changed meanwhile
}
