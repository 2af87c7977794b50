package admission

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/peercred"
)

// fuzzID maps a fuzz byte to an id: mostly small (so lists and peers
// collide), plus root, nobody and the largest uid.
func fuzzID(b byte) uint32 {
	switch b {
	case 0xFF:
		return 65534
	case 0xFE:
		return 0xFFFFFFFF
	}
	return uint32(b % 6)
}

// fuzzPolicy decodes lists as (selector, id) byte pairs; selector%5 picks
// allowed uids, allowed gids, read-only uids, read-only gids or the peer's
// supplementary groups.
func fuzzPolicy(lists []byte, self byte) (Policy, []uint32) {
	p := Policy{SelfUID: fuzzID(self)}
	var groups []uint32
	for i := 0; i+1 < len(lists); i += 2 {
		id := fuzzID(lists[i+1])
		switch lists[i] % 5 {
		case 0:
			p.AllowedUIDs = append(p.AllowedUIDs, id)
		case 1:
			p.AllowedGIDs = append(p.AllowedGIDs, id)
		case 2:
			p.ReadOnlyUIDs = append(p.ReadOnlyUIDs, id)
		case 3:
			p.ReadOnlyGIDs = append(p.ReadOnlyGIDs, id)
		case 4:
			groups = append(groups, id)
		}
	}
	return p, groups
}

// maxRole is the role p grants c, computed independently of classify as
// set questions: a read-only UID entry caps the peer at read-only; otherwise
// the highest role any list (or the default) grants.
func maxRole(p Policy, c peercred.Cred) Role {
	if !c.Known {
		return None
	}
	inGroups := func(list []uint32) bool {
		return slices.ContainsFunc(list, c.InGroup)
	}
	if slices.Contains(p.ReadOnlyUIDs, c.UID) {
		return ReadOnly
	}
	adminDefault := len(p.AllowedUIDs) == 0 && len(p.AllowedGIDs) == 0 && (c.UID == 0 || c.UID == p.SelfUID)
	if slices.Contains(p.AllowedUIDs, c.UID) || inGroups(p.AllowedGIDs) || adminDefault {
		return Admin
	}
	if inGroups(p.ReadOnlyGIDs) {
		return ReadOnly
	}
	return None
}

func FuzzDecide(f *testing.F) {
	f.Add([]byte{}, byte(0), byte(0), byte(0), byte(0), true, "add_cluster")
	f.Add([]byte{}, byte(3), byte(3), byte(0), byte(3), true, "status")
	f.Add([]byte{0, 1, 2, 0xFF}, byte(0xFF), byte(0xFF), byte(0xFF), byte(0), true, "status")
	f.Add([]byte{1, 2, 3, 4, 4, 2}, byte(5), byte(1), byte(2), byte(0), true, "remove_backend")
	f.Add([]byte{2, 1, 0, 1}, byte(1), byte(1), byte(1), byte(0), true, "no_such_verb")
	f.Add([]byte{0, 1}, byte(0), byte(0), byte(0), byte(0), false, "")
	f.Fuzz(func(t *testing.T, lists []byte, uid, gid, self, pid byte, known bool, verb string) {
		p, groups := fuzzPolicy(lists, self)
		c := peercred.Cred{Known: known, UID: fuzzID(uid), GID: fuzzID(gid), Groups: groups, PID: int32(pid)}
		before := fmt.Sprint(p, c)
		d := Decide(p, c, verb)
		if fmt.Sprint(p, c) != before {
			t.Fatal("Decide modified its inputs")
		}

		// The role is exactly what the lists grant (never more), and Decide
		// agrees with Policy.Role.
		if want := maxRole(p, c); d.Role != want {
			t.Fatalf("role %v, the lists grant %v: %+v %+v", d.Role, want, p, c)
		}
		if d.Role != p.Role(c) {
			t.Fatalf("Decide role %v, Policy.Role %v", d.Role, p.Role(c))
		}
		// A uid listed read-only is never admin.
		if known && slices.Contains(p.ReadOnlyUIDs, c.UID) && d.Role != ReadOnly {
			t.Fatalf("read-only UID %d got %v", c.UID, d.Role)
		}
		// With an empty policy, only root and the supervisor's uid, as admins.
		if len(lists) == 0 || (len(p.AllowedUIDs)+len(p.AllowedGIDs)+len(p.ReadOnlyUIDs)+len(p.ReadOnlyGIDs) == 0) {
			want := None
			if known && (c.UID == 0 || c.UID == p.SelfUID) {
				want = Admin
			}
			if d.Role != want {
				t.Fatalf("empty policy: UID %d (self %d) got %v, want %v", c.UID, p.SelfUID, d.Role, want)
			}
		}
		// Without credentials, nothing.
		if !known && (d.Allowed || d.Role != None) {
			t.Fatalf("peer without credentials got %+v", d)
		}
		// Allowed exactly when the role covers the verb; unknown verbs are admin-only.
		need := Required(verb)
		if !isVerb(verb) && need != Admin {
			t.Fatalf("unknown verb %q needs %v", verb, need)
		}
		if d.Allowed != (d.Role != None && d.Role >= need) {
			t.Fatalf("allowed %v with role %v for verb %q needing %v", d.Allowed, d.Role, verb, need)
		}
		if d.Allowed == strings.HasPrefix(d.Reason, "unauthorized: ") {
			t.Fatalf("allowed %v but reason %q", d.Allowed, d.Reason)
		}
		if !d.Allowed && d.Role == None && !strings.HasPrefix(d.Reason, "unauthorized: actor UID ") {
			t.Fatalf("refusal without upstream's wording: %q", d.Reason)
		}
		if strings.ContainsAny(d.Reason, "\n\r") {
			t.Fatalf("reason spans lines: %q", d.Reason)
		}
	})
}
