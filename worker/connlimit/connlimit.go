// Package connlimit caps the client connections of a worker (one Limit is
// shared by its HTTP, HTTPS and TCP servers) and runs their accept loops.
package connlimit

import "sync/atomic"

// Limit counts open client connections against Max. A nil *Limit is
// unlimited. It is safe for concurrent use.
type Limit struct {
	Max int64 // <= 0: unlimited
	n   atomic.Int64
}

// Open returns the number of client connections open.
func (c *Limit) Open() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Acquire takes a slot for a new connection; false means the worker is at
// its limit and the connection must be refused. Every true is matched by
// one Release.
func (c *Limit) Acquire() bool {
	if c == nil {
		return true
	}
	if c.n.Add(1) > c.Max && c.Max > 0 {
		c.n.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot taken by Acquire.
func (c *Limit) Release() {
	if c != nil {
		c.n.Add(-1)
	}
}
