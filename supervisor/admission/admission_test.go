package admission

import (
	"strings"
	"testing"

	"github.com/sozu-go/sozu/peercred"
)

func cred(uid, gid uint32, groups ...uint32) peercred.Cred {
	return peercred.Cred{Known: true, UID: uid, GID: gid, Groups: groups, PID: 4242, Start: 1}
}

func TestDecide(t *testing.T) {
	empty := Policy{SelfUID: 998}
	emptyRoot := Policy{SelfUID: 0}
	uids := Policy{AllowedUIDs: []uint32{1000}, SelfUID: 0}
	full := Policy{
		AllowedUIDs:  []uint32{1000, 1001},
		AllowedGIDs:  []uint32{50},
		ReadOnlyUIDs: []uint32{65534, 1001},
		ReadOnlyGIDs: []uint32{60},
		SelfUID:      0,
	}
	roOnly := Policy{ReadOnlyUIDs: []uint32{65534}, SelfUID: 998}

	tests := []struct {
		name    string
		p       Policy
		c       peercred.Cred
		verb    string
		allowed bool
		role    Role
		reason  string // exact when it starts with "unauthorized: ", else a prefix
	}{
		// Nothing configured: root and the supervisor's own uid, as admins.
		{"default root", empty, cred(0, 0), "add_cluster", true, Admin,
			"admin: UID 0 is root (no command_allowed_uids or command_allowed_gids set); verb add_cluster needs admin"},
		{"default self", empty, cred(998, 998), "hard_stop", true, Admin, "admin: UID 998 is the supervisor's own"},
		{"default other uid", empty, cred(1000, 1000), "status", false, None,
			"unauthorized: actor UID 1000 not in command_allowed_uids (not set: only root and the supervisor's UID 998 are admitted)"},
		{"default, supervisor is root", emptyRoot, cred(65534, 65534), "status", false, None,
			"unauthorized: actor UID 65534 not in command_allowed_uids (not set: only root is admitted)"},
		{"no credentials", empty, peercred.Cred{}, "status", false, None,
			"unauthorized: actor UID unknown not in command_allowed_uids (the kernel gave no peer credentials)"},

		// Upstream's key alone: exactly upstream's refusal; root is no longer implied.
		{"listed uid", uids, cred(1000, 1000), "add_cluster", true, Admin, "admin: UID 1000 in command_allowed_uids"},
		{"unlisted uid", uids, cred(65534, 65534), "status", false, None,
			"unauthorized: actor UID 65534 not in command_allowed_uids"},
		{"root not listed", uids, cred(0, 0), "list_workers", false, None,
			"unauthorized: actor UID 0 not in command_allowed_uids"},

		// Read-only role.
		{"read-only uid, read verb", full, cred(65534, 65534), "status", true, ReadOnly,
			"read-only: UID 65534 in command_readonly_uids; verb status needs read-only"},
		{"read-only uid, admin verb", full, cred(65534, 65534), "add_cluster", false, ReadOnly,
			"unauthorized: verb add_cluster needs the admin role; UID 65534 has read-only"},
		{"read-only uid, unknown verb", full, cred(65534, 65534), "frobnicate", false, ReadOnly,
			`unauthorized: verb "frobnicate" needs the admin role; UID 65534 has read-only`},
		{"read-only uid, no verb", full, cred(65534, 65534), "", false, ReadOnly,
			"unauthorized: verb (none) needs the admin role; UID 65534 has read-only"},
		{"read-only uid, Logging", full, cred(65534, 65534), "Logging", false, ReadOnly,
			"unauthorized: verb Logging needs the admin role; UID 65534 has read-only"},
		{"read-only uid, save_state", full, cred(65534, 65534), "save_state", false, ReadOnly,
			"unauthorized: verb save_state needs the admin role; UID 65534 has read-only"},
		{"read-only uid, subscribe_events", full, cred(65534, 65534), "subscribe_events", true, ReadOnly, "read-only: "},

		// Precedence.
		{"uid in both uid lists: read-only", full, cred(1001, 1001), "add_backend", false, ReadOnly,
			"unauthorized: verb add_backend needs the admin role; UID 1001 has read-only"},
		{"read-only uid beats admin group", full, cred(65534, 50), "add_backend", false, ReadOnly,
			"unauthorized: verb add_backend needs the admin role; UID 65534 has read-only"},
		{"admin uid beats read-only group", full, cred(1000, 60), "add_backend", true, Admin, "admin: UID 1000 in command_allowed_uids"},
		{"admin group (primary)", full, cred(2000, 50), "remove_cluster", true, Admin, "admin: GID 50 in command_allowed_gids"},
		{"admin group (supplementary)", full, cred(2000, 2000, 2000, 50), "remove_cluster", true, Admin, "admin: GID 50 in command_allowed_gids"},
		{"admin group beats read-only group", full, cred(2000, 60, 50), "remove_cluster", true, Admin, "admin: GID 50"},
		{"read-only group", full, cred(2000, 2000, 60), "query_metrics", true, ReadOnly, "read-only: GID 60 in command_readonly_gids"},
		{"read-only group, admin verb", full, cred(2000, 2000, 60), "upgrade_main", false, ReadOnly,
			"unauthorized: verb upgrade_main needs the admin role; UID 2000 has read-only"},
		{"no match with every list set", full, cred(2000, 2000, 2001), "status", false, None,
			"unauthorized: actor UID 2000 not in command_allowed_uids, nor admitted by command_readonly_uids or command_allowed_gids or command_readonly_gids (GIDs 2000,2001)"},
		{"root with lists set", full, cred(0, 0), "status", false, None,
			"unauthorized: actor UID 0 not in command_allowed_uids, nor admitted by command_readonly_uids or command_allowed_gids or command_readonly_gids (GIDs 0)"},

		// Read-only lists alone keep the default admins.
		{"read-only list only: root still admin", roOnly, cred(0, 0), "add_cluster", true, Admin, "admin: UID 0 is root"},
		{"read-only list only: listed uid", roOnly, cred(65534, 65534), "list_listeners", true, ReadOnly, "read-only: UID 65534"},
		{"read-only list only: other uid", roOnly, cred(1000, 1000), "status", false, None,
			"unauthorized: actor UID 1000 not in command_allowed_uids (not set: only root and the supervisor's UID 998 are admitted), nor admitted by command_readonly_uids"},
		{"read-only uid that is the supervisor's", Policy{ReadOnlyUIDs: []uint32{998}, SelfUID: 998}, cred(998, 998), "add_cluster", false, ReadOnly,
			"unauthorized: verb add_cluster needs the admin role; UID 998 has read-only"},
		{"admin, unknown verb", uids, cred(1000, 1000), "frobnicate", true, Admin, `admin: UID 1000 in command_allowed_uids; verb "frobnicate" needs admin`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.p, tt.c, tt.verb)
			if d.Allowed != tt.allowed || d.Role != tt.role {
				t.Fatalf("Decide = %+v, want allowed %v role %v", d, tt.allowed, tt.role)
			}
			if strings.HasPrefix(tt.reason, "unauthorized: ") {
				if d.Reason != tt.reason {
					t.Fatalf("reason\n got %q\nwant %q", d.Reason, tt.reason)
				}
			} else if !strings.HasPrefix(d.Reason, tt.reason) {
				t.Fatalf("reason %q, want prefix %q", d.Reason, tt.reason)
			}
			if got := tt.p.Role(tt.c); got != tt.role {
				t.Fatalf("Policy.Role = %v, want %v", got, tt.role)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{}, ""},
		{Policy{AllowedUIDs: []uint32{1}, ReadOnlyUIDs: []uint32{2}, AllowedGIDs: []uint32{1}, ReadOnlyGIDs: []uint32{2}}, ""},
		{Policy{AllowedUIDs: []uint32{1, 7, 7}, ReadOnlyUIDs: []uint32{7}, AllowedGIDs: []uint32{3}, ReadOnlyGIDs: []uint32{3}},
			"UID 7 is in both command_allowed_uids and command_readonly_uids: give it one role\n" +
				"GID 3 is in both command_allowed_gids and command_readonly_gids: give it one role"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestRoleText(t *testing.T) {
	for r, want := range map[Role]string{None: "none", ReadOnly: "read-only", Admin: "admin", 9: "role(9)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
		if b, _ := r.MarshalText(); string(b) != want {
			t.Errorf("%d.MarshalText() = %q, want %q", r, b, want)
		}
	}
}
