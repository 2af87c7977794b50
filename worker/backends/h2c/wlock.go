package h2c

import "time"

// wlock is the write lock of a backend connection: a mutex whose wait can
// be bounded. A backend that stops reading holds a writer in write(2) up
// to Options.WriteTimeout; a stream must not wait for it past its own
// write deadline, and a client connection's reader (which cancels
// streams) must not wait at all.
type wlock chan struct{}

func newWlock() wlock { return make(wlock, 1) }

func (l wlock) Lock()   { l <- struct{}{} }
func (l wlock) Unlock() { <-l }

// TryLock takes the lock if it is free, without waiting.
func (l wlock) TryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// LockBefore takes the lock, waiting at most until deadline (the zero
// time: no bound). It reports whether the lock was taken.
func (l wlock) LockBefore(deadline time.Time) bool {
	if l.TryLock() {
		return true
	}
	if deadline.IsZero() {
		l.Lock()
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}
