package account

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		user, group string
		want        Account
		err         string
	}{
		{"", "", Account{User: "nobody", Group: "nogroup", UID: 65534, GID: 65534}, ""},
		{"nobody", "root", Account{User: "nobody", Group: "root", UID: 65534, GID: 0}, ""},
		{"0", "", Account{User: "0", Group: "root", UID: 0, GID: 0}, ""},
		{"54321", "nogroup", Account{User: "54321", Group: "nogroup", UID: 54321, GID: 65534}, ""},
		{"54321", "", Account{}, `worker_user "54321" has no account entry: set worker_group`},
		{"no-such-user-x", "", Account{}, `worker_user "no-such-user-x"`},
		{"nobody", "no-such-group-x", Account{}, `worker_group "no-such-group-x"`},
		{"-1", "0", Account{}, `worker_user "-1"`},
	}
	for _, tt := range tests {
		got, err := Lookup(tt.user, tt.group)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Lookup(%q, %q) = %v, %v; want error %q", tt.user, tt.group, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %v", tt.user, tt.group, got, err, tt.want)
		}
	}
}
