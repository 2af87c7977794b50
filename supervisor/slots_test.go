package supervisor

import (
	"strings"
	"testing"
)

// TestSessionSlots: per-uid cap for everyone, the last slots for admins.
func TestSessionSlots(t *testing.T) {
	s := newSessionSlots(10, 3, 4) // 10 in all, 3 kept for admins, 4 per uid
	nobody, other, root := peerKey{true, 65534}, peerKey{true, 1000}, peerKey{true, 0}
	steps := []struct {
		key   peerKey
		admin bool
		want  string // "" = admitted
	}{
		{nobody, false, ""}, {nobody, false, ""}, {nobody, false, ""}, {nobody, false, ""},
		{nobody, false, "too many command sessions for uid 65534 (4 open, command_max_sessions_per_uid = 4)"},
		{other, false, ""}, {other, false, ""}, {other, false, ""},
		{peerKey{}, false, "the last 3 kept for admins"}, // 7 open: the rest is for admins
		{root, true, ""}, {root, true, ""}, {root, true, ""},
		{root, true, "too many command sessions (10 open)"},
	}
	for i, st := range steps {
		got := s.take(st.key, st.admin)
		if (st.want == "") != (got == "") || !strings.Contains(got, st.want) {
			t.Fatalf("step %d (uid %s, admin %v): %q, want %q", i, st.key, st.admin, got, st.want)
		}
	}
	s.release(nobody)
	if got := s.take(nobody, false); !strings.Contains(got, "kept for admins") {
		t.Errorf("a freed slot beyond the shared ones went to a non-admin: %q", got)
	}
	s.release(root)
	if got := s.take(nobody, true); got != "" {
		t.Errorf("an admin refused a free slot: %q", got)
	}
}
