package connlimit

import (
	"container/list"
	"net"
	"time"
)

// acceptor identifies one accept loop, the owner of the connections it
// queued.
type acceptor struct{ _ byte }

// waitRoom blocks until an accept loop may accept one more connection (a
// free slot or a free place in the queue), and reports false if stop is
// closed first. Release, a queued connection's timeout and a stopping
// loop wake it; it never polls.
func (l *Limit) waitRoom(stop <-chan struct{}) bool {
	if l == nil {
		return true
	}
	for {
		l.mu.Lock()
		if l.hasRoomLocked() {
			l.mu.Unlock()
			return true
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return false
		}
	}
}

// take hands c to handle with a slot, or queues it when the worker is at
// Max. Room was seen by waitRoom, but the accept loops of other listeners
// may have taken it since: the queue then holds one more than QueueLen
// (at most one per listener), and without a queue c is closed.
func (l *Limit) take(c net.Conn, owner *acceptor, handle func(net.Conn)) {
	if l == nil {
		handle(c)
		return
	}
	l.mu.Lock()
	if l.acquireLocked() {
		l.mu.Unlock()
		handle(c)
		return
	}
	if !l.queueing() {
		l.dropped++
		l.mu.Unlock()
		c.Close()
		return
	}
	w := &waiting{c: c, handle: handle, owner: owner}
	w.elem = l.queue.PushBack(w)
	w.timer = time.AfterFunc(l.QueueTimeout, func() { l.expire(w) })
	l.mu.Unlock()
}

// expire closes w if it still waits when its QueueTimeout runs out.
func (l *Limit) expire(w *waiting) {
	l.mu.Lock()
	if w.elem == nil { // handed a slot, or dropped, meanwhile
		l.mu.Unlock()
		return
	}
	l.unqueueLocked(w.elem)
	l.dropped++
	l.mu.Unlock()
	w.c.Close()
}

// dropQueued closes the connections owner queued: its listener stopped
// accepting, and they were never served.
func (l *Limit) dropQueued(owner *acceptor) {
	if l == nil {
		return
	}
	var gone []net.Conn
	l.mu.Lock()
	for e := l.queue.Front(); e != nil; {
		next := e.Next()
		if w := e.Value.(*waiting); w.owner == owner {
			l.unqueueLocked(e)
			l.dropped++
			gone = append(gone, w.c)
		}
		e = next
	}
	l.mu.Unlock()
	for _, c := range gone {
		c.Close()
	}
}

// unqueueLocked takes e out of the queue, stops its timer and wakes the
// accept loops (a place in the queue is free).
func (l *Limit) unqueueLocked(e *list.Element) *waiting {
	w := l.queue.Remove(e).(*waiting)
	w.elem = nil
	w.timer.Stop()
	l.wakeLocked()
	return w
}
