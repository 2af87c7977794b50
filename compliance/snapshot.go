package compliance

import (
	"io/fs"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// Snapshot is everything the checks look at, gathered beforehand by the
// caller (the CLI reads the configuration file, asks the supervisor, reads
// /proc and stats files). Evaluate only reads it. A part that could not be
// gathered carries the reason in its Err field, and the checks that needed
// it are n/a with that reason.
type Snapshot struct {
	Now        time.Time // the clock of the report (certificate expiry)
	ConfigPath string    // configuration file the settings came from

	Settings Settings // from the configuration file

	// Socket is the command socket, as stat(2) sees it from the caller.
	Socket File

	HTTPS        []HTTPSListener // list_listeners, in address order
	HTTP         []HTTPListener  // list_listeners + list_frontends + query_cluster_by_id
	ListenersErr string          // why the listeners are unknown ("" = known)

	Certificates    []Certificate // the listeners' defaults, then the state's
	CertificatesErr string        // why query_certificates_from_the_state failed

	Workers    []Worker // status, then /proc per worker (`sozu sandbox`)
	WorkersErr string

	Audit Audit
}

// Settings are the security keys of the configuration file, defaults
// applied (supervisor/config).
type Settings struct {
	CommandSocket string
	SocketGroup   string // command_socket_group; "" = socket 0600

	AllowedUIDs  []uint32 // command_allowed_uids
	AllowedGIDs  []uint32 // command_allowed_gids
	ReadonlyUIDs []uint32 // command_readonly_uids
	ReadonlyGIDs []uint32 // command_readonly_gids

	AuditTextTarget  string // audit_logs_target; "" = none
	AuditJSONTarget  string // audit_logs_json_target; "" = none
	AuditHMACKeyFile string // audit_hmac_key_file (or its default)
	AuditFailOpen    bool
	AuditQueries     bool
	AuditFsync       bool

	AccessLogsTarget string // access_logs_target; "" = the main target
	LogLevel         string // log_level
	// LogLevelInfo: log_level writes info lines (info, debug, trace), so
	// access records of successes reach the main target.
	LogLevelInfo bool

	SandboxMode       string // kill, errno or off
	WorkerUser        string
	WorkerAllowRoot   bool
	TLSSessionTickets bool // tls_session_tickets

	NotInForce []NotInForce // keys written without effect, in file order
}

// File is a path and what lstat(2) said about it.
type File struct {
	Path string
	Mode fs.FileMode // type and permission bits; valid when Err == ""
	Err  string      // why it could not be examined ("" = examined)
}

// HTTPSListener is the part of one HTTPS listener the checks read, as the
// supervisor's state holds it (list_listeners).
type HTTPSListener struct {
	Address          string
	Active           bool
	Versions         []command.TlsVersion
	CipherList       []string
	CipherSuites     []string
	Groups           []string
	SendTLS13Tickets uint64
	StrictSNIBinding *bool // nil: the default, on
	HSTS             *HSTS // nil: no HSTS policy on the listener
}

// HSTS is a listener's HSTS policy.
type HSTS struct {
	Enabled           bool
	MaxAge            uint32 // seconds
	IncludeSubdomains bool
}

// HTTPListener is one plain HTTP listener and the routes it serves.
type HTTPListener struct {
	Address string
	Active  bool
	Routes  []Route
	// RoutesErr says why the routes are unknown (list_frontends or a
	// cluster query failed).
	RoutesErr string
}

// Route is an HTTP frontend forwarding to a cluster.
type Route struct {
	Hostname      string
	Path          string
	ClusterID     string // "" = a deny rule
	HTTPSRedirect bool   // the cluster's https_redirect
}

// Certificate is one certificate the proxy may serve. Keys never reach
// the snapshot: the supervisor blanks them.
type Certificate struct {
	Source      string // "listener 0.0.0.0:443 default", "state"
	Fingerprint string // as the supervisor names it ("" for a listener default)
	Names       []string
	PEM         string // the leaf first
}

// Worker is the confinement of one worker process (`sozu sandbox`).
type Worker struct {
	ID         uint32
	PID        int32
	RunState   string
	Threads    int
	UID, GID   int
	NoNewPrivs bool // on every thread
	Seccomp    int  // lowest mode over the threads: 2 = filter
	Err        string
}

// Audit is what the caller could read of the audit trail.
type Audit struct {
	TextFile, TextDir File // valid when Settings.AuditTextTarget is a path
	JSONFile, JSONDir File // valid when Settings.AuditJSONTarget is a path
	KeyFile           File

	// Chain is audit.VerifyFile's verdict on the JSON file.
	Chain Chain
}

// Chain is the outcome of verifying the JSON audit file's HMAC chain.
type Chain struct {
	Verified bool   // the chain held
	Records  int    // records verified
	FirstSeq uint64 //
	LastSeq  uint64 //
	Broken   string // the verifier's error when the chain is broken
	Skipped  string // why it was not verified (file or key unreadable)

	// HeadSeq is the sealed head the file reaches (0: not checked), and
	// HeadNote why it was not checked ("" when it was, or when the
	// verifier stopped before the end).
	HeadSeq  uint64
	HeadNote string
	// Tampers are the file's audit.tamper records (complete when the
	// chain verified or broke only at a gap such a record declares).
	Tampers []Tamper
}

// Tamper is one audit.tamper record of the JSON audit file.
type Tamper struct {
	Line    int
	Seq     uint64
	Missing string // the records its anchor declares missing ("seq 5 to 9"), or ""
	Reason  string // what the supervisor found at that start
}
