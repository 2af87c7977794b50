package config

import (
	"testing"
	"time"
)

func TestSecurityDefaults(t *testing.T) {
	c, err := Parse([]byte("audit_logs_json_target = \"audit/audit.json\"\n"), "/etc/sozu/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admission
	if a.AllowedUIDs != nil || a.SocketGroup != "" || a.UserCacheSize != 256 || a.UserCacheTTL != time.Minute || a.LookupTimeout != 100*time.Millisecond {
		t.Errorf("admission defaults: %+v", a)
	}
	if c.Audit != (Audit{HMACKeyFile: "/etc/sozu/audit/audit.json.key", Queries: true, Fsync: true}) {
		t.Errorf("audit defaults: %+v", c.Audit)
	}
	if c.Sandbox != (Sandbox{User: "nobody", Mode: "kill"}) {
		t.Errorf("sandbox defaults: %+v", c.Sandbox)
	}
}

func TestSecurityKeys(t *testing.T) {
	c, err := Parse([]byte(`command_allowed_uids = [0, 1000]
command_allowed_gids = [27]
command_readonly_uids = [65534]
command_readonly_gids = [100]
command_socket_group = "nogroup"
peer_lookup_timeout = 50
audit_hmac_key_file = "keys/audit.key"
audit_fail_open = true
audit_queries = false
worker_user = "sozu"
worker_group = "sozu"
sandbox_mode = "ERRNO"
`), "/etc/sozu/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admission
	if len(a.AllowedUIDs) != 2 || a.AllowedGIDs[0] != 27 || a.ReadonlyUIDs[0] != 65534 || a.ReadonlyGIDs[0] != 100 ||
		a.SocketGroup != "nogroup" || a.LookupTimeout != 50*time.Millisecond {
		t.Errorf("admission: %+v", a)
	}
	if c.Audit.HMACKeyFile != "/etc/sozu/keys/audit.key" || !c.Audit.FailOpen || c.Audit.Queries {
		t.Errorf("audit: %+v", c.Audit)
	}
	if c.Sandbox != (Sandbox{User: "sozu", Group: "sozu", Mode: "errno"}) {
		t.Errorf("sandbox: %+v", c.Sandbox)
	}
}
