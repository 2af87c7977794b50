package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"
)

// Session ticket keys, when a listener enables tickets (Policy.Tickets): a
// new key seals tickets every TicketKeyRotation, and a key is forgotten
// TicketKeyLifetime after it was made, so that no ticket outlives it and a
// key that leaks from memory opens at most that much traffic.
const (
	TicketKeyRotation = time.Hour
	TicketKeyLifetime = 24 * time.Hour
)

// keyring holds the session ticket keys of one listener. The keys outlive
// the SNI snapshots, so that sessions resume across certificate changes.
type keyring struct {
	mu  sync.Mutex
	cur atomic.Pointer[keyset]
}

// keyset is an immutable generation of keys, newest first.
type keyset struct {
	gen  uint64
	keys [][32]byte
	made []time.Time // when each key was made
}

// fresh reports whether ks needs no rotation at now: its newest key is
// younger than TicketKeyRotation and its oldest younger than
// TicketKeyLifetime.
func (ks *keyset) fresh(now time.Time) bool {
	return ks != nil && now.Sub(ks.made[0]) < TicketKeyRotation && now.Sub(ks.made[len(ks.made)-1]) < TicketKeyLifetime
}

// current returns the keys to use at now, rotating them when due.
func (r *keyring) current(now time.Time) *keyset {
	if ks := r.cur.Load(); ks.fresh(now) {
		return ks
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if old.fresh(now) {
		return old
	}
	next := &keyset{gen: 1}
	var k [32]byte
	rand.Read(k[:]) // never fails (crypto/rand panics rather than return an error)
	next.keys, next.made = append(next.keys, k), append(next.made, now)
	if old != nil {
		next.gen = old.gen + 1
		for i, t := range old.made {
			if now.Sub(t) < TicketKeyLifetime {
				next.keys, next.made = append(next.keys, old.keys[i]), append(next.made, t)
			}
		}
	}
	r.cur.Store(next)
	return next
}

// install makes the ring's current keys those of c (a snapshot's config,
// whose generation is in gen) when they changed since the last install.
func (r *keyring) install(c *tls.Config, gen *atomic.Uint64, now time.Time) {
	ks := r.current(now)
	if gen.Load() == ks.gen {
		return
	}
	c.SetSessionTicketKeys(ks.keys)
	gen.Store(ks.gen)
}
