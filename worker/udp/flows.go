package udp

import (
	"container/list"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

// Admission refusals of table.admit.
var (
	errTableFull = errors.New("flow table full of active flows")
	errSourceCap = errors.New("client source (IPv4 address, IPv6 /64) holds its share of the flow table")
)

// flow is one client address's association with one backend. Its fields
// are guarded by the table's owner (Server.mu) except conn, set before the
// flow is shared and only closed after.
type flow struct {
	client  netip.AddrPort
	cluster *Cluster
	backend *backends.Backend
	conn    *net.UDPConn

	listener netip.AddrPort  // the listener's address, for the access log
	tags     *accesslog.Tags // the listener's frontend tags when the flow started
	metrics  metrics.Flow    // where its datagrams count

	started     time.Time
	lastClient  time.Time // last datagram from the client
	lastBackend time.Time // last reply from the backend (started until one)
	requests    uint32    // client datagrams relayed
	responses   uint32    // replies relayed
	bytesIn     uint64    // client payload bytes relayed to the backend
	bytesOut    uint64    // reply bytes relayed to the client
	proxySent   bool      // the PROXY header went with a datagram already
	current     bool      // byKey holds this flow (false once its requests are spent)
	closed      bool
	reason      string // why it ended, for FlowEnd

	elem *list.Element // in table.lru
}

// lastActive is the later of the two directions' last datagram.
func (f *flow) lastActive() time.Time {
	if f.lastBackend.After(f.lastClient) {
		return f.lastBackend
	}
	return f.lastClient
}

// table holds a listener's live flows: by client address (the current
// flow of each address), by source (sourceOf: for the per-source cap and
// SOURCE_IP affinity), and in least-recently-active order. It is pure bookkeeping,
// with the clock passed in; the Server serialises calls to it.
type table struct {
	max       int
	perSource int
	byKey     map[netip.AddrPort]*flow
	bySource  map[netip.Addr]*source // by sourceOf
	lru       *list.List             // front: most recently active
}

// sourceOf is the source a client address counts for: its IPv4 address
// (IPv4-mapped IPv6 unmapped), or its IPv6 /64, which one host holds whole
// and may send from any address of without spoofing.
func sourceOf(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// source is what the table knows of one client source (sourceOf).
type source struct {
	flows   int
	backend *backends.Backend // the backend of its flows, for SOURCE_IP affinity
}

func newTable(maxFlows int) *table {
	return &table{max: maxFlows, perSource: perSourceCap(maxFlows),
		byKey: map[netip.AddrPort]*flow{}, bySource: map[netip.Addr]*source{}, lru: list.New()}
}

// len is the number of live flows, current or not.
func (t *table) len() int { return t.lru.Len() }

// resize sets the bound of the table (a listener update); live flows over
// a smaller bound stay until they end.
func (t *table) resize(maxFlows int) {
	t.max, t.perSource = maxFlows, perSourceCap(maxFlows)
}

// lookup returns the current flow of client, or nil.
func (t *table) lookup(client netip.AddrPort) *flow { return t.byKey[client] }

// admit makes room for a new flow of client at now. It refuses when the
// client's source (its IPv4 address, its IPv6 /64) holds its share already (errSourceCap), or when the table is
// full and its least recently active flow has not been idle for evictIdle
// (errTableFull). Otherwise it returns the flow to evict first, if any
// (the caller ends it with remove), and the backend the client's source is
// bound to by SOURCE_IP affinity, if any.
func (t *table) admit(client netip.AddrPort, now time.Time) (evict *flow, affinity *backends.Backend, err error) {
	src := t.bySource[sourceOf(client.Addr())]
	if src != nil && src.flows >= t.perSource {
		return nil, nil, errSourceCap
	}
	if src != nil {
		affinity = src.backend
	}
	if t.lru.Len() < t.max {
		return nil, affinity, nil
	}
	oldest := t.lru.Back().Value.(*flow)
	if now.Sub(oldest.lastActive()) < evictIdle {
		return nil, nil, errTableFull
	}
	return oldest, affinity, nil
}

// oldestIdle returns the least recently active flow when it has been
// silent for evictIdle at now, else nil.
func (t *table) oldestIdle(now time.Time) *flow {
	if t.lru.Len() == 0 {
		return nil
	}
	if f := t.lru.Back().Value.(*flow); now.Sub(f.lastActive()) >= evictIdle {
		return f
	}
	return nil
}

// insert adds f, the new current flow of its client.
func (t *table) insert(f *flow) {
	if old := t.byKey[f.client]; old != nil {
		old.current = false
	}
	f.current = true
	t.byKey[f.client] = f
	key := sourceOf(f.client.Addr())
	src := t.bySource[key]
	if src == nil {
		src = &source{}
		t.bySource[key] = src
	}
	src.flows++
	if src.backend == nil {
		src.backend = f.backend
	}
	f.elem = t.lru.PushFront(f)
}

// touch records activity of f: it moves to the front of the LRU order.
func (t *table) touch(f *flow) {
	if f.elem != nil {
		t.lru.MoveToFront(f.elem)
	}
}

// retire makes f no longer its client's current flow (its requests are
// spent): the next datagram of the client starts a new flow, while f stays
// live for the replies still to come.
func (t *table) retire(f *flow) {
	if f.current && t.byKey[f.client] == f {
		delete(t.byKey, f.client)
	}
	f.current = false
}

// remove forgets f. It reports false when f was removed already.
func (t *table) remove(f *flow) bool {
	if f.elem == nil {
		return false
	}
	t.retire(f)
	t.lru.Remove(f.elem)
	f.elem = nil
	key := sourceOf(f.client.Addr())
	if src := t.bySource[key]; src != nil {
		src.flows--
		if src.flows <= 0 {
			delete(t.bySource, key)
		}
	}
	return true
}

// all returns the live flows.
func (t *table) all() []*flow {
	out := make([]*flow, 0, t.lru.Len())
	for e := t.lru.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*flow))
	}
	return out
}
