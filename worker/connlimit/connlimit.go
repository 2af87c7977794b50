// Package connlimit caps the client connections of a worker (one Limit is
// shared by its HTTP, HTTPS and TCP servers) and runs their accept loops.
package connlimit

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// Limit counts open client connections against Max and holds the accepted
// connections that wait for a slot (see Serve). A nil *Limit is unlimited.
// Set the exported fields before first use; the methods are safe for
// concurrent use.
type Limit struct {
	Max int64 // <= 0: unlimited
	// QueueLen bounds the accepted connections waiting for a slot: once
	// that many wait, the accept loops stop calling accept and new
	// connections wait in the kernel's listen backlog.
	QueueLen int
	// QueueTimeout is how long an accepted connection waits for a slot
	// before it is closed. With QueueLen or QueueTimeout <= 0 no accepted
	// connection waits: at Max the accept loops stop calling accept.
	QueueTimeout time.Duration

	mu      sync.Mutex
	n       int64         // open connections, under mu
	queue   list.List     // of *waiting, oldest first, under mu
	room    chan struct{} // closed when room appears; nil when nobody waits
	dropped int64         // queued connections closed, under mu
}

// waiting is an accepted connection waiting in the queue for a slot.
type waiting struct {
	c      net.Conn
	handle func(net.Conn)
	owner  *acceptor // the accept loop that queued it
	elem   *list.Element
	timer  *time.Timer
}

// Open returns the number of client connections open.
func (l *Limit) Open() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Queued returns the number of accepted connections waiting for a slot.
func (l *Limit) Queued() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue.Len()
}

// Dropped returns how many queued connections were closed without being
// served (their QueueTimeout ran out, or their listener stopped).
func (l *Limit) Dropped() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Acquire takes a slot for a new connection; false means the worker is at
// its limit. Every true is matched by one Release.
func (l *Limit) Acquire() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquireLocked()
}

func (l *Limit) acquireLocked() bool {
	if l.Max > 0 && l.n >= l.Max {
		return false
	}
	l.n++
	return true
}

// Release gives back a slot taken by Acquire (or handed to a queued
// connection). When a connection waits in the queue, the slot passes to
// the oldest one at once: its handle runs on a new goroutine.
func (l *Limit) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if e := l.queue.Front(); e != nil {
		w := l.unqueueLocked(e)
		l.mu.Unlock()
		go w.handle(w.c)
		return
	}
	l.n--
	l.wakeLocked()
	l.mu.Unlock()
}

// queueing reports whether accepted connections may wait for a slot.
func (l *Limit) queueing() bool { return l.QueueLen > 0 && l.QueueTimeout > 0 }

// hasRoomLocked reports whether an accept loop may accept one more
// connection: a slot is free, or a place in the queue.
func (l *Limit) hasRoomLocked() bool {
	return l.Max <= 0 || l.n < l.Max || l.queueing() && l.queue.Len() < l.QueueLen
}

// wakeLocked wakes the accept loops waiting for room.
func (l *Limit) wakeLocked() {
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
}

// MaxQueueLen bounds the accept queue of New: a waiting connection holds a
// descriptor, and past this many the kernel's listen backlog holds them
// for free.
const MaxQueueLen = 1024

// New returns the limit of a worker: max open connections (<= 0:
// unlimited) and an accept queue of min(max, MaxQueueLen) connections,
// each closed after queueTimeout (<= 0: no queue).
func New(max int64, queueTimeout time.Duration) *Limit {
	return &Limit{Max: max, QueueLen: int(min(max, MaxQueueLen)), QueueTimeout: queueTimeout}
}
