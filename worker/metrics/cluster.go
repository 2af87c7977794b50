package metrics

import (
	"sync"
	"sync/atomic"

	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Counters of a cluster and of a backend; the status ones share the
// indexes of the proxy level's.
const (
	cRequests = nProxy + iota
	cBytesIn
	cBytesOut
	cUDPDatagramsIn
	cUDPDatagramsOut
	nCluster
)

var clusterNames = map[int]string{
	cRequests: pm.Requests, status1xx: pm.Status1xx, status2xx: pm.Status2xx, status3xx: pm.Status3xx,
	status4xx: pm.Status4xx, status5xx: pm.Status5xx, statusOther: pm.StatusOther,
	cBytesIn: pm.BytesIn, cBytesOut: pm.BytesOut, cUDPDatagramsIn: pm.UDPDatagramsIn, cUDPDatagramsOut: pm.UDPDatagramsOut,
}

// Cluster is the metrics of one cluster. Safe for concurrent use.
type Cluster struct {
	ID       string
	c        [nCluster]atomic.Int64
	flows    atomic.Int64 // live UDP flows (a gauge: never cleared)
	reqTime  *pm.Sketch
	svcTime  *pm.Sketch
	connect  *pm.Sketch
	response *pm.Sketch

	mu       sync.Mutex
	backends atomic.Pointer[map[string]*Backend]
}

func newCluster(id string) *Cluster {
	c := &Cluster{ID: id, reqTime: pm.NewSketch(), svcTime: pm.NewSketch(), connect: pm.NewSketch(), response: pm.NewSketch()}
	m := map[string]*Backend{}
	c.backends.Store(&m)
	return c
}

// Backend is the metrics of one backend of a cluster (by backend id: the
// addresses of one id share them, as upstream's). Safe for concurrent use.
type Backend struct {
	ID    string
	c     [nCluster]atomic.Int64
	flows atomic.Int64 // live UDP flows (a gauge: never cleared)
	// wentUp and wentDown count the backend's moves into and out of
	// rotation (upstream's backend.up and backend.down), backend level
	// only.
	wentUp, wentDown atomic.Int64
	connect          *pm.Sketch
	response         *pm.Sketch
}

// Backend returns the metrics of backend id, made on first use (a nil
// cluster gives nil). It allocates only then.
func (c *Cluster) Backend(id string) *Backend {
	if c == nil {
		return nil
	}
	if b := (*c.backends.Load())[id]; b != nil {
		return b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.backends.Load()
	if b := old[id]; b != nil {
		return b
	}
	b := &Backend{ID: id, connect: pm.NewSketch(), response: pm.NewSketch()}
	m := make(map[string]*Backend, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = b
	c.backends.Store(&m)
	return b
}

func (c *Cluster) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.backends.Load()
	m := make(map[string]*Backend, len(keep))
	for id, b := range old {
		if keep[id] {
			m[id] = b
		}
	}
	c.backends.Store(&m)
}

func (c *Cluster) clear() {
	for i := range c.c {
		c.c[i].Store(0)
	}
	c.reqTime.Clear()
	c.svcTime.Clear()
	c.connect.Clear()
	c.response.Clear()
	for _, b := range *c.backends.Load() {
		for i := range b.c {
			b.c[i].Store(0)
		}
		b.wentUp.Store(0)
		b.wentDown.Store(0)
		b.connect.Clear()
		b.response.Clear()
	}
}

// recorded reports whether c or one of its backends holds anything: a
// count, a sample or a live flow.
func (c *Cluster) recorded() bool {
	if counted(&c.c) || c.flows.Load() != 0 || c.reqTime.Count() > 0 || c.svcTime.Count() > 0 || c.connect.Count() > 0 || c.response.Count() > 0 {
		return true
	}
	for _, b := range *c.backends.Load() {
		if counted(&b.c) || b.flows.Load() != 0 || b.wentUp.Load() != 0 || b.wentDown.Load() != 0 || b.connect.Count() > 0 || b.response.Count() > 0 {
			return true
		}
	}
	return false
}

// counted reports whether one of the counters c is not zero.
func counted(c *[nCluster]atomic.Int64) bool {
	for i := range c {
		if c[i].Load() != 0 {
			return true
		}
	}
	return false
}
