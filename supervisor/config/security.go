package config

import (
	"slices"
	"strings"
	"time"
)

// Admission is who may use the command socket, and how (extension keys
// beside upstream's command_allowed_uids). With no list set, only root and
// the supervisor's own uid are admitted, as admins.
type Admission struct {
	AllowedUIDs  []uint32 // command_allowed_uids: admin role
	AllowedGIDs  []uint32 // command_allowed_gids: admin role
	ReadonlyUIDs []uint32 // command_readonly_uids: read-only role
	ReadonlyGIDs []uint32 // command_readonly_gids: read-only role
	SocketGroup  string   // command_socket_group: socket 0660 with this group; "" = 0600
	// KeyCustodianUIDs (state_key_custodian_uids) may receive private
	// keys in a state file they save (save_state), besides root and the
	// supervisor's own uid; anyone else's state file has them omitted.
	KeyCustodianUIDs []uint32

	UserCacheSize int           // peer_user_cache_size, entries (default 256)
	UserCacheTTL  time.Duration // peer_user_cache_ttl (default 60 s)
	LookupTimeout time.Duration // peer_lookup_timeout (default 100 ms)

	// MaxSessionsPerUID (command_max_sessions_per_uid, default 16, at least
	// 1) bounds the command-socket sessions one uid may hold open at once,
	// whatever its role.
	MaxSessionsPerUID int
	// SessionIdleTimeout (command_session_idle_timeout, seconds, default
	// 60; 0 = never) closes a session that sends nothing for that long. An
	// event subscription is a stream and is never closed as idle.
	SessionIdleTimeout time.Duration
}

// Audit configures the audit trail (audit_logs_target and
// audit_logs_json_target are on Config).
type Audit struct {
	HMACKeyFile string // audit_hmac_key_file, absolute; default: JSON target + ".key"
	FailOpen    bool   // audit_fail_open: never refuse a verb for want of a sink
	Queries     bool   // audit_queries: record read-only verbs too (default true)
	Fsync       bool   // audit_fsync: fsync every record (default true)
}

// Sandbox is how workers confine themselves before serving.
type Sandbox struct {
	User      string // worker_user (default "nobody")
	Group     string // worker_group; "" = the user's primary group
	AllowRoot bool   // worker_allow_root: let workers keep uid 0 (logged, audited)
	Mode      string // sandbox_mode: "kill" (default), "errno" or "off"
	// TLSSessionTickets (tls_session_tickets, default false) lets HTTPS
	// listeners whose send_tls13_tickets is not 0 issue session tickets.
	// Off, no listener issues any: a ticket key can decrypt every session
	// it sealed, which PCI DSS reviewers count against forward secrecy.
	TLSSessionTickets bool
}

const (
	defaultPeerUserCacheSize = 256
	defaultPeerUserCacheTTL  = 60  // seconds
	defaultPeerLookupTimeout = 100 // milliseconds
	defaultMaxSessionsPerUID = 16
	defaultSessionIdle       = 60 // seconds
	defaultWorkerUser        = "nobody"
	defaultSandboxMode       = "kill"
)

func applySecurityDefaults(c *rawConfig) {
	set(&c.PeerUserCacheSize, defaultPeerUserCacheSize)
	set(&c.PeerUserCacheTTL, defaultPeerUserCacheTTL)
	set(&c.PeerLookupTimeout, defaultPeerLookupTimeout)
	set(&c.CommandMaxSessionsPerUID, defaultMaxSessionsPerUID)
	set(&c.CommandSessionIdleTimeout, defaultSessionIdle)
	set(&c.AuditFailOpen, false)
	set(&c.AuditQueries, true)
	set(&c.AuditFsync, true)
	set(&c.WorkerUser, defaultWorkerUser)
	set(&c.WorkerGroup, "")
	set(&c.WorkerAllowRoot, false)
	set(&c.SandboxMode, defaultSandboxMode)
	set(&c.TLSSessionTickets, false)
}

// security checks and copies the admission, audit and sandbox keys.
func (b *builder) security(r *rawConfig) {
	c := b.cfg
	a := &c.Admission
	a.AllowedUIDs = slices.Clone(c.CommandAllowedUIDs)
	lists := []struct {
		key string
		in  *[]uint32
		out *[]uint32
	}{
		{"command_allowed_gids", r.CommandAllowedGIDs, &a.AllowedGIDs},
		{"command_readonly_uids", r.CommandReadonlyUIDs, &a.ReadonlyUIDs},
		{"command_readonly_gids", r.CommandReadonlyGIDs, &a.ReadonlyGIDs},
		{"state_key_custodian_uids", r.StateKeyCustodians, &a.KeyCustodianUIDs},
	}
	for _, l := range lists {
		if l.in == nil {
			continue
		}
		if len(*l.in) == 0 {
			b.errs.at(l.key, "an empty list grants nothing; leave the key out instead")
		}
		*l.out = slices.Clone(*l.in)
	}
	if r.CommandSocketGroup != nil {
		a.SocketGroup = strings.TrimSpace(*r.CommandSocketGroup)
		if a.SocketGroup == "" {
			b.errs.at("command_socket_group", "must name a group; leave the key out to keep the socket 0600")
		}
	}
	a.UserCacheSize = int(*r.PeerUserCacheSize)
	b.atLeast("peer_user_cache_size", uint64(*r.PeerUserCacheSize), 1)
	a.UserCacheTTL = b.seconds("peer_user_cache_ttl", *r.PeerUserCacheTTL)
	a.LookupTimeout = time.Duration(*r.PeerLookupTimeout) * time.Millisecond
	b.atLeast("peer_lookup_timeout", uint64(*r.PeerLookupTimeout), 1)
	a.MaxSessionsPerUID = int(*r.CommandMaxSessionsPerUID)
	b.atLeast("command_max_sessions_per_uid", uint64(*r.CommandMaxSessionsPerUID), 1)
	a.SessionIdleTimeout = time.Duration(*r.CommandSessionIdleTimeout) * time.Second

	au := &c.Audit
	au.HMACKeyFile = b.hmacKeyFile(r)
	if r.AuditHMACKeyFile != nil {
		b.checkTarget("audit_hmac_key_file", *r.AuditHMACKeyFile, au.HMACKeyFile, secretTarget)
	} else if au.HMACKeyFile != "" && !b.errs.bad["audit_logs_json_target"] {
		b.checkTarget("audit_logs_json_target", au.HMACKeyFile, au.HMACKeyFile, secretTarget)
	}
	au.FailOpen = *r.AuditFailOpen
	au.Queries = *r.AuditQueries
	au.Fsync = *r.AuditFsync

	s := &c.Sandbox
	s.User = strings.TrimSpace(*r.WorkerUser)
	if s.User == "" {
		b.errs.at("worker_user", "must name a user (or a numeric uid)")
	}
	s.Group = strings.TrimSpace(*r.WorkerGroup)
	s.AllowRoot = *r.WorkerAllowRoot
	s.TLSSessionTickets = *r.TLSSessionTickets
	s.Mode = strings.ToLower(strings.TrimSpace(*r.SandboxMode))
	if !slices.Contains([]string{"kill", "errno", "off"}, s.Mode) {
		b.errs.at("sandbox_mode", "invalid sandbox mode %q: want kill, errno or off", *r.SandboxMode)
	}
}

// hmacKeyFile resolves audit_hmac_key_file, else the JSON audit file's name
// + ".key" (b.cfg.AuditLogsJSONTarget must be set already); "" for none.
func (b *builder) hmacKeyFile(r *rawConfig) string {
	c := b.cfg
	if r.AuditHMACKeyFile != nil {
		return b.file("audit_hmac_key_file", *r.AuditHMACKeyFile)
	} else if c.AuditLogsJSONTarget != "" && c.AuditLogsJSONTarget != "stdout" && c.AuditLogsJSONTarget != "stderr" {
		return c.AuditLogsJSONTarget + ".key"
	}
	return ""
}
