// Package audit is the compliance-grade trail of the Sōzu control plane:
// sanitised records, text and JSON sinks, a fail-closed broker, an HMAC chain and its verifier.
package audit

import (
	"fmt"
	"math"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is the outcome a record states.
type Result string

const (
	ResultOK  Result = "ok"
	ResultErr Result = "err"
)

// Field limits, in runes, applied after sanitising. A longer value is cut
// on a rune boundary and ends with '…'. The JSON schema states the same.
const (
	MaxReason  = 256
	MaxTarget  = 512
	MaxID      = 256 // cluster_id, backend_id, client_id, user
	MaxShort   = 64  // comm, role, error_code, version, git_sha
	MaxSocket  = 1024
	timeLayout = "2006-01-02T15:04:05.000000Z"
)

// Record is one audit event. The caller fills what it knows; the broker
// sets Time, BootGeneration, Seq, Version and GitSHA when it writes the
// record (Log overwrites them), so that time and sequence follow file order.
//
// Empty strings, zero times and nil pointers are written as JSON null (and
// left out of the text form). Free-form strings are sanitised (Sanitize)
// and clamped to the Max* limits when written; the Record itself is not
// modified apart from the broker-set fields.
type Record struct {
	Time           time.Time // set by the broker: UTC, µs
	BootGeneration uint64    // set by the broker
	Seq            uint64    // set by the broker

	SessionULID string // command-socket session, "" for internal events
	RequestULID string // request; attempt and completion records share it
	Actor       Actor
	ClientID    string    // the session's client id as the supervisor numbers it
	ConnectTime time.Time // when the client connected
	Socket      string    // command socket path

	Verb      string // dotted verb, see VerbOf and the Verb* constants
	Code      Code   // event code
	Target    string // what the verb acts on, secrets excluded (see SetRequest)
	Result    Result
	ErrorCode string // stable error code ("ENOSPC", "admission_denied"), "" on success
	Reason    string // free text, at most MaxReason runes once sanitised

	ClusterID string
	BackendID string

	Version string // set by the broker
	GitSHA  string // set by the broker

	Extras Extras
}

// Actor is who caused the event: the peer of the command socket
// (SO_PEERCRED, /proc comm, user name) and the role admission gave it, or
// the supervisor itself for internal events (SystemActor).
type Actor struct {
	UID  *uint32
	GID  *uint32
	PID  *int32
	User string
	Comm string
	Role string
}

// Extras are measurements and fingerprints.
type Extras struct {
	Elapsed       *time.Duration // elapsed_ms: verb duration, or outage duration for audit.recovered
	Fanout        *int           // workers the request was sent to
	Workers       *Workers       // worker answers of a fanned-out verb
	RequestSHA256 string         // first 16 hex digits of SHA-256 of the marshalled request
	CertSHA256    string         // SHA-256 of the certificate's DER, 64 hex
	KeySHA256     string         // SHA-256 of the key's public half (SPKI DER), 64 hex
}

// Workers counts the answers of a fanned-out verb.
type Workers struct {
	OK       int // answered OK
	Err      int // answered an error, or did not answer in time
	Expected int // should have answered
}

// Link is the chain part of a JSON record: seq continuity and the HMAC.
// PrevSeq and PrevChain are set on anchoring records only (the first
// record of a file, after a reopen, or after the sink failed).
type Link struct {
	PrevSeq   *uint64
	PrevChain string
	Chain     string
}

// PeerActor builds the actor of a command-socket client.
func PeerActor(uid, gid uint32, pid int32, userName, comm, role string) Actor {
	return Actor{UID: &uid, GID: &gid, PID: &pid, User: userName, Comm: comm, Role: role}
}

var systemActor = sync.OnceValue(func() Actor {
	uid, gid, pid := uint32(os.Geteuid()), uint32(os.Getegid()), int32(os.Getpid())
	a := Actor{UID: &uid, GID: &gid, PID: &pid, Role: "system", Comm: "sozu"}
	if b, err := os.ReadFile("/proc/self/comm"); err == nil {
		a.Comm = strings.TrimSpace(string(b))
	}
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		a.User = u.Username
	}
	return a
})

// SystemActor is the supervisor process itself (effective uid and gid,
// pid, comm, user name looked up once), role "system": the actor of
// internal events.
func SystemActor() Actor { return systemActor() }

var (
	ulidPattern   = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	sha16Pattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// RecordError is an internal error: the caller built a record the schema
// would refuse (unknown code, malformed verb or ULID, bad result). Nothing
// was written; the caller must treat it as an audit failure.
type RecordError struct {
	Field  string
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("audit: internal error: record field %s: %s", e.Field, e.Reason)
}

// check reports the first field that would make r invalid.
func (r *Record) check() error {
	switch {
	case !r.Code.Known():
		return &RecordError{"code", fmt.Sprintf("unknown event code %q", r.Code)}
	case len(r.Verb) > MaxShort || !verbPattern.MatchString(r.Verb):
		return &RecordError{"verb", fmt.Sprintf("%q is not a dotted verb", clean(r.Verb, MaxShort))}
	case r.Result != ResultOK && r.Result != ResultErr:
		return &RecordError{"result", fmt.Sprintf("%q is neither ok nor err", clean(string(r.Result), MaxShort))}
	case r.SessionULID != "" && !ulidPattern.MatchString(r.SessionULID):
		return &RecordError{"session_ulid", fmt.Sprintf("%q is not a ULID", clean(r.SessionULID, MaxShort))}
	case r.RequestULID != "" && !ulidPattern.MatchString(r.RequestULID):
		return &RecordError{"request_ulid", fmt.Sprintf("%q is not a ULID", clean(r.RequestULID, MaxShort))}
	case r.Extras.RequestSHA256 != "" && !sha16Pattern.MatchString(r.Extras.RequestSHA256):
		return &RecordError{"extras.request_sha256", "want 16 lowercase hex digits"}
	case r.Extras.CertSHA256 != "" && !sha256Pattern.MatchString(r.Extras.CertSHA256):
		return &RecordError{"extras.cert_sha256", "want 64 lowercase hex digits"}
	case r.Extras.KeySHA256 != "" && !sha256Pattern.MatchString(r.Extras.KeySHA256):
		return &RecordError{"extras.key_sha256", "want 64 lowercase hex digits"}
	case r.Actor.PID != nil && *r.Actor.PID < 0:
		return &RecordError{"actor.pid", "negative"}
	case r.Extras.Fanout != nil && !count(*r.Extras.Fanout):
		return &RecordError{"extras.fanout", "not a count (0 to 2^31-1)"}
	case r.Extras.Workers != nil && !(count(r.Extras.Workers.OK) && count(r.Extras.Workers.Err) && count(r.Extras.Workers.Expected)):
		return &RecordError{"extras.workers", "not a count (0 to 2^31-1)"}
	case r.Extras.Elapsed != nil && *r.Extras.Elapsed < 0:
		return &RecordError{"extras.elapsed_ms", "negative duration"}
	}
	return nil
}

func count(n int) bool { return n >= 0 && n <= math.MaxInt32 }

// chainSuffix is what follows the canonical bytes (less their closing
// brace) on a JSON line: `,"chain":"<64 hex>"}`.
const (
	chainKey       = `,"chain":"`
	chainSuffixLen = len(chainKey) + 64 + len(`"}`)
)
