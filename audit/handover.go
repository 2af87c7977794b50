package audit

import "errors"

// Handing the trail over to another process (a hot upgrade of the
// supervisor): the old supervisor suspends its broker, which writes the
// sealed head and closes the sinks; the new supervisor opens its own broker
// on the same files, which resumes the seq and the JSON chain from the
// files' last records (Open), so the chain continues unbroken across the
// two processes. If the new supervisor does not take over, the old one
// resumes its broker, which reads the files again the same way.

// ErrSuspended is returned by Log and Reopen while the broker is suspended:
// the trail belongs to another process, and the action must be refused
// (whatever audit_fail_open says: the record would have no place).
var ErrSuspended = errors.New("audit: the trail is being handed over to another supervisor")

// Position is where the trail stands: the last seq a sink took and, with a
// JSON sink, that sink's last chain (hex), which the next record continues.
type Position struct {
	Seq   uint64
	Chain string // "" without a JSON sink
}

// Position returns the trail's current position.
func (b *Broker) Position() Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := Position{Seq: b.seq}
	for _, s := range b.sinks {
		if s.format == FormatJSON {
			p.Chain = hexChain(s.lastChain)
		}
	}
	return p
}

// Suspend writes the sealed head, closes every sink and makes Log and
// Reopen return ErrSuspended until Resume; it returns the position the next
// writer must continue. Suspending a suspended broker does nothing.
func (b *Broker) Suspend() (Position, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Position{}, ErrClosed
	}
	p := Position{Seq: b.seq}
	for _, s := range b.sinks {
		if s.format == FormatJSON {
			p.Chain = hexChain(s.lastChain)
		}
	}
	if b.suspended {
		return p, nil
	}
	b.saveHead()
	err := b.closeSinks()
	b.suspended = true
	return p, err
}

// Resume opens the sinks again after Suspend, carrying on from what the
// files hold by now (another process may have written to them), as Open
// does, and writes its audit.open record. On error the broker stays
// suspended.
func (b *Broker) Resume() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if !b.suspended {
		return nil
	}
	nb, err := Open(b.opts)
	if err != nil {
		return err
	}
	nb.mu.Lock()
	b.sinks, b.seq, b.boot, b.headFailing = nb.sinks, nb.seq, nb.boot, nb.headFailing
	nb.mu.Unlock()
	b.suspended = false
	return nil
}
