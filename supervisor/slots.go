package supervisor

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/sozu-go/sozu/peercred"
)

// adminReservedSessions of the maxClientSessions slots are kept for admins
// (root and the uids and groups given the admin role): peers without it
// cannot take them, so filling the socket never locks the admins out.
const adminReservedSessions = 16

// peerKey identifies a peer for the per-uid session cap and the refusal
// records: its uid, or "unknown" when the kernel gave no credentials (all
// such peers share one key).
type peerKey struct {
	known bool
	uid   uint32
}

func keyOf(c peercred.Cred) peerKey { return peerKey{known: c.Known, uid: c.UID} }

func (k peerKey) String() string {
	if !k.known {
		return "unknown"
	}
	return strconv.FormatUint(uint64(k.uid), 10)
}

// sessionSlots admits command-socket connections: at most max open at
// once, the last reserved of them for admins only, and at most perUID per
// peer key whatever its role. It is safe for concurrent use.
type sessionSlots struct {
	max, reserved, perUID int

	mu    sync.Mutex
	open  int
	byKey map[peerKey]int
}

func newSessionSlots(max, reserved, perUID int) *sessionSlots {
	return &sessionSlots{max: max, reserved: reserved, perUID: perUID, byKey: map[peerKey]int{}}
}

// take admits one more session of k (admin: whether its role is admin). It
// returns "" when admitted (release must follow), or the reason of the
// refusal, for the client and the audit record.
func (s *sessionSlots) take(k peerKey, admin bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.byKey[k]; {
	case n >= s.perUID:
		return fmt.Sprintf("too many command sessions for uid %s (%d open, command_max_sessions_per_uid = %d): connection refused", k, n, s.perUID)
	case s.open >= s.max:
		return fmt.Sprintf("too many command sessions (%d open): connection refused, try again later", s.open)
	case !admin && s.open >= s.max-s.reserved:
		return fmt.Sprintf("too many command sessions (%d open, the last %d kept for admins): connection refused, try again later", s.open, s.reserved)
	}
	s.open++
	s.byKey[k]++
	return ""
}

// release gives back a slot taken for k.
func (s *sessionSlots) release(k peerKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.byKey[k]--; s.byKey[k] <= 0 {
		delete(s.byKey, k)
	}
}
