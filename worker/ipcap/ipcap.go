// Package ipcap enforces the cap on concurrent connections per (cluster,
// client IP address): upstream's max_connections_per_ip, with its
// semantics (upstream doc/rate-limit-design.md, in our words in
// docs/backends.md):
//
//   - the cap of a cluster is its own max_connections_per_ip when set (0:
//     unlimited for that cluster), else the global one (0: none);
//   - a connection takes one slot per cluster it reaches, when its request
//     is routed to that cluster and before any backend is contacted, and
//     gives every slot back when it closes (a failed backend connect keeps
//     the slot: the answer closes the connection anyway);
//   - counts are per worker: N workers let N × cap connections through.
//
// A Limits is safe for concurrent use.
package ipcap

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits holds a worker's global cap and its counts.
type Limits struct {
	global     atomic.Uint64
	retryAfter atomic.Uint32

	mu     sync.Mutex
	counts map[Slot]uint64

	// Rejected counts connections refused by the cap.
	Rejected atomic.Int64
}

// Slot is one (cluster, client IP) slot held by a connection.
type Slot struct {
	Cluster string
	IP      netip.Addr
}

// New returns limits with the global cap and Retry-After (seconds; 0: no
// Retry-After field) of the worker's configuration.
func New(global uint64, retryAfter uint32) *Limits {
	l := &Limits{counts: map[Slot]uint64{}}
	l.global.Store(global)
	l.retryAfter.Store(retryAfter)
	return l
}

// SetGlobal changes the global cap (set_max_connections_per_ip). Held
// slots stay held; the new cap applies to the next connections.
func (l *Limits) SetGlobal(n uint64) { l.global.Store(n) }

// Global returns the global cap (0: none).
func (l *Limits) Global() uint64 { return l.global.Load() }

// Cap is the cap of a cluster whose own setting is override (nil: none).
func (l *Limits) Cap(override *uint64) uint64 {
	if override != nil {
		return *override
	}
	return l.global.Load()
}

// RetryAfter is the Retry-After (seconds, 0: none) of a cluster whose own
// setting is override (nil: none).
func (l *Limits) RetryAfter(override *uint32) uint32 {
	if override != nil {
		return *override
	}
	return l.retryAfter.Load()
}

// Acquire takes a slot for s unless limit slots are held already. With
// limit 0 (no cap) or an invalid IP nothing is counted: held is false, and
// there is nothing to Release. ok is false when the cap refuses s.
func (l *Limits) Acquire(s Slot, limit uint64) (ok, held bool) {
	if limit == 0 || !s.IP.IsValid() {
		return true, false
	}
	s.IP = s.IP.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[s] >= limit {
		l.Rejected.Add(1)
		return false, false
	}
	l.counts[s]++
	return true, true
}

// Release gives back a slot Acquire reported held.
func (l *Limits) Release(s Slot) {
	s.IP = s.IP.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.counts[s]; n > 1 {
		l.counts[s] = n - 1
	} else {
		delete(l.counts, s)
	}
}

// Held returns the slots held for s (tests, diagnostics).
func (l *Limits) Held(s Slot) uint64 {
	s.IP = s.IP.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[s]
}
