package backends

import (
	"context"
	"time"
)

// Sticky sessions: a cluster with sticky_session pins each client to the
// backend named by its sticky cookie (see package proxy). This file maps
// the cookie's value, a backend's sticky id, to the backend; the value is
// never trusted for anything else: it only selects among the sticky ids
// configured in the Set, and any other value (hostile, stale, of a
// removed backend) is a miss, after which the policy picks as usual.

// StickyID returns the sticky id of b: the value of the sticky cookie
// that sends a client to b, or "" when b takes no sticky clients (see
// Spec.StickyID). It may change with each Registry.Update.
func (b *Backend) StickyID() string {
	if p := b.stickyID.Load(); p != nil {
		return *p
	}
	return ""
}

// buildSticky indexes the backends of s by sticky id; the first backend
// of a sticky id wins (the snapshot reports duplicates).
func (s *Set) buildSticky() {
	for _, l := range [2][]*Backend{s.primaries.l, s.backups.l} {
		for _, b := range l {
			id := b.StickyID()
			if id == "" {
				continue
			}
			if s.sticky == nil {
				s.sticky = map[string]*Backend{}
			}
			if s.sticky[id] == nil {
				s.sticky[id] = b
			}
		}
	}
}

// Sticky returns the backend of s whose sticky id is id, if it is in
// rotation (neither failure counting nor the health check holds it down)
// and still configured (s may be a snapshot already replaced), else nil: a client stuck to a backend that is down, removed or unknown
// is balanced anew. It does not allocate.
func (s *Set) Sticky(id []byte) *Backend {
	if s == nil || len(id) == 0 || s.sticky == nil {
		return nil
	}
	b := s.sticky[string(id)]
	if b == nil || !b.inRotation() || b.removed.Load() {
		return nil
	}
	return b
}

// ConnectSticky is Connect for a client that presented stickyID (nil for
// none): its first attempt goes to the backend s.Sticky(stickyID) when
// there is one, and counts as one of the Options.Attempts; when it fails,
// or when there is no such backend, the policy picks among the others as
// Connect does. The caller compares the returned connection's
// Backend.StickyID with stickyID to know whether the client needs a new
// cookie.
func (s *Set) ConnectSticky(ctx context.Context, timeout time.Duration, fresh bool, key uint64, stickyID []byte) (*Conn, error) {
	return s.connect(ctx, time.Now(), timeout, fresh, key, s.Sticky(stickyID))
}

// ConnectStickyAt is ConnectSticky with the caller's reading of the clock
// (see ConnectAt).
func (s *Set) ConnectStickyAt(ctx context.Context, now time.Time, timeout time.Duration, fresh bool, key uint64, stickyID []byte) (*Conn, error) {
	return s.connect(ctx, now, timeout, fresh, key, s.Sticky(stickyID))
}
