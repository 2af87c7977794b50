// Package audit is the compliance-grade trail of the Sōzu control plane:
// sanitised records, text and JSON sinks, a fail-closed broker, an HMAC chain and its verifier.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
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

// wireRecord is the JSON form without the chain, in the stable key order.
// Every key is always present; nil pointers are JSON null.
type wireRecord struct {
	TS             string     `json:"ts"`
	BootGeneration uint64     `json:"boot_generation"`
	Seq            uint64     `json:"seq"`
	SessionULID    *string    `json:"session_ulid"`
	RequestULID    *string    `json:"request_ulid"`
	Actor          wireActor  `json:"actor"`
	ClientID       *string    `json:"client_id"`
	ConnectTS      *string    `json:"connect_ts"`
	Socket         *string    `json:"socket"`
	Verb           string     `json:"verb"`
	Code           string     `json:"code"`
	Event          string     `json:"event"`
	Target         *string    `json:"target"`
	Result         string     `json:"result"`
	ErrorCode      *string    `json:"error_code"`
	Reason         *string    `json:"reason"`
	ClusterID      *string    `json:"cluster_id"`
	BackendID      *string    `json:"backend_id"`
	Version        *string    `json:"version"`
	GitSHA         *string    `json:"git_sha"`
	Extras         wireExtras `json:"extras"`
	PrevSeq        *uint64    `json:"prev_seq"`
	PrevChain      *string    `json:"prev_chain"`
}

type wireActor struct {
	UID  *uint32 `json:"uid"`
	GID  *uint32 `json:"gid"`
	PID  *int32  `json:"pid"`
	User *string `json:"user"`
	Comm *string `json:"comm"`
	Role *string `json:"role"`
}

type wireExtras struct {
	ElapsedMS     *float64     `json:"elapsed_ms"`
	Fanout        *int         `json:"fanout"`
	Workers       *wireWorkers `json:"workers"`
	RequestSHA256 *string      `json:"request_sha256"`
	CertSHA256    *string      `json:"cert_sha256"`
	KeySHA256     *string      `json:"key_sha256"`
}

type wireWorkers struct {
	OK       int `json:"ok"`
	Err      int `json:"err"`
	Expected int `json:"expected"`
}

// wireLine is a whole JSON line, chain included (for decoding).
type wireLine struct {
	wireRecord
	Chain string `json:"chain"`
}

func opt(s string, max int) *string {
	if s == "" {
		return nil
	}
	c := clean(s, max)
	return &c
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

func formatTime(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(timeLayout) }

// wire converts r to its JSON form, sanitised and clamped.
func (r *Record) wire() wireRecord {
	w := wireRecord{
		TS:             formatTime(r.Time),
		BootGeneration: r.BootGeneration,
		Seq:            r.Seq,
		SessionULID:    opt(r.SessionULID, 26),
		RequestULID:    opt(r.RequestULID, 26),
		Actor: wireActor{
			UID: r.Actor.UID, GID: r.Actor.GID, PID: r.Actor.PID,
			User: opt(r.Actor.User, MaxID), Comm: opt(r.Actor.Comm, MaxShort), Role: opt(r.Actor.Role, MaxShort),
		},
		ClientID:  opt(r.ClientID, MaxID),
		ConnectTS: optTime(r.ConnectTime),
		Socket:    opt(r.Socket, MaxSocket),
		Verb:      r.Verb,
		Code:      string(r.Code),
		Event:     r.Code.Name(),
		Target:    opt(r.Target, MaxTarget),
		Result:    string(r.Result),
		ErrorCode: opt(r.ErrorCode, MaxShort),
		Reason:    opt(r.Reason, MaxReason),
		ClusterID: opt(r.ClusterID, MaxID),
		BackendID: opt(r.BackendID, MaxID),
		Version:   opt(r.Version, MaxShort),
		GitSHA:    opt(r.GitSHA, MaxShort),
		Extras: wireExtras{
			Fanout:        r.Extras.Fanout,
			RequestSHA256: opt(r.Extras.RequestSHA256, 16),
			CertSHA256:    opt(r.Extras.CertSHA256, 64),
			KeySHA256:     opt(r.Extras.KeySHA256, 64),
		},
	}
	if d := r.Extras.Elapsed; d != nil {
		ms := elapsedMS(*d)
		w.Extras.ElapsedMS = &ms
	}
	if wk := r.Extras.Workers; wk != nil {
		w.Extras.Workers = &wireWorkers{OK: wk.OK, Err: wk.Err, Expected: wk.Expected}
	}
	return w
}

// elapsedMS is d in milliseconds with microsecond precision.
func elapsedMS(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}

// marshalCanonical returns the canonical JSON bytes of w: one object, the
// stable key order, no HTML escaping, no trailing newline. These bytes are
// what the chain authenticates.
func marshalCanonical(w *wireRecord) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("audit: internal error: encoding record seq %d: %w", w.Seq, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// chainSuffix is what follows the canonical bytes (less their closing
// brace) on a JSON line: `,"chain":"<64 hex>"}`.
const (
	chainKey       = `,"chain":"`
	chainSuffixLen = len(chainKey) + 64 + len(`"}`)
)

// appendChain turns canonical bytes into a JSON line (newline included).
func appendChain(canonical []byte, chainHex string) []byte {
	line := make([]byte, 0, len(canonical)+chainSuffixLen+1)
	line = append(line, canonical[:len(canonical)-1]...)
	line = append(line, chainKey...)
	line = append(line, chainHex...)
	line = append(line, `"}`...)
	return append(line, '\n')
}

// splitChain splits a JSON line (without its newline) into its canonical
// bytes and chain hex. It fails when the line does not end with a chain.
func splitChain(line []byte) (canonical []byte, chainHex string, err error) {
	if len(line) < chainSuffixLen+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, "", errors.New(`the record does not end with its "chain" field`)
	}
	k := len(line) - chainSuffixLen
	if !bytes.Equal(line[k:k+len(chainKey)], []byte(chainKey)) {
		return nil, "", errors.New(`the record does not end with its "chain" field`)
	}
	chainHex = string(line[k+len(chainKey) : len(line)-2])
	if !sha256Pattern.MatchString(chainHex) {
		return nil, "", errors.New("the chain is not 64 lowercase hex digits")
	}
	canonical = make([]byte, k+1)
	copy(canonical, line[:k])
	canonical[k] = '}'
	return canonical, chainHex, nil
}

// DecodeJSON parses one JSON record line (with or without its newline)
// into a Record and its Link. It checks the JSON only, not the schema
// (ValidateJSON) nor the chain (Verify).
func DecodeJSON(line []byte) (Record, Link, error) {
	var w wireLine
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSuffix(line, []byte("\n"))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, Link{}, fmt.Errorf("not an audit record: %w", err)
	}
	if dec.More() {
		return Record{}, Link{}, errors.New("not an audit record: data after the JSON object")
	}
	r, err := w.record()
	l := Link{PrevSeq: w.PrevSeq, Chain: w.Chain}
	if w.PrevChain != nil {
		l.PrevChain = *w.PrevChain
	}
	return r, l, err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (w *wireLine) record() (Record, error) {
	r := Record{
		BootGeneration: w.BootGeneration,
		Seq:            w.Seq,
		SessionULID:    deref(w.SessionULID),
		RequestULID:    deref(w.RequestULID),
		Actor: Actor{UID: w.Actor.UID, GID: w.Actor.GID, PID: w.Actor.PID,
			User: deref(w.Actor.User), Comm: deref(w.Actor.Comm), Role: deref(w.Actor.Role)},
		ClientID:  deref(w.ClientID),
		Socket:    deref(w.Socket),
		Verb:      w.Verb,
		Code:      Code(w.Code),
		Target:    deref(w.Target),
		Result:    Result(w.Result),
		ErrorCode: deref(w.ErrorCode),
		Reason:    deref(w.Reason),
		ClusterID: deref(w.ClusterID),
		BackendID: deref(w.BackendID),
		Version:   deref(w.Version),
		GitSHA:    deref(w.GitSHA),
		Extras: Extras{
			Fanout:        w.Extras.Fanout,
			RequestSHA256: deref(w.Extras.RequestSHA256),
			CertSHA256:    deref(w.Extras.CertSHA256),
			KeySHA256:     deref(w.Extras.KeySHA256),
		},
	}
	var err error
	if r.Time, err = time.Parse(timeLayout, w.TS); err != nil {
		return r, fmt.Errorf("ts %q: want %s", w.TS, timeLayout)
	}
	if w.ConnectTS != nil {
		if r.ConnectTime, err = time.Parse(timeLayout, *w.ConnectTS); err != nil {
			return r, fmt.Errorf("connect_ts %q: want %s", *w.ConnectTS, timeLayout)
		}
	}
	if ms := w.Extras.ElapsedMS; ms != nil {
		d := time.Duration(math.Round(*ms*1000)) * time.Microsecond
		r.Extras.Elapsed = &d
	}
	if wk := w.Extras.Workers; wk != nil {
		r.Extras.Workers = &Workers{OK: wk.OK, Err: wk.Err, Expected: wk.Expected}
	}
	return r, nil
}

// Text returns the text form of r, one line ending in '\n':
//
//	[session request cluster backend]<TAB>AUDIT<TAB>Command(verb=…, key=value, …)
//
// Missing prefix fields are "-". Values are sanitised, then '\', ',', '='
// are escaped with a backslash (and, in the prefix, ' ', '[', ']' and a
// lone "-"), so that the line splits unambiguously. Keys with no value are
// left out, except verb, event, code, seq, boot, ts and result.
func (r *Record) Text() []byte {
	w := r.wire()
	return w.text()
}

func (w *wireRecord) text() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, p := range []*string{w.SessionULID, w.RequestULID, w.ClusterID, w.BackendID} {
		if i > 0 {
			b.WriteByte(' ')
		}
		if p == nil {
			b.WriteByte('-')
		} else {
			escapeText(&b, *p, true)
		}
	}
	b.WriteString("]\tAUDIT\tCommand(")
	first := true
	kv := func(k string, v *string) {
		if v == nil {
			return
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(k)
		b.WriteByte('=')
		escapeText(&b, *v, false)
	}
	s := func(v string) *string { return &v }
	u := func(v uint64) *string { return s(strconv.FormatUint(v, 10)) }
	kv("verb", s(w.Verb))
	kv("event", s(w.Event))
	kv("code", s(w.Code))
	kv("seq", u(w.Seq))
	kv("boot", u(w.BootGeneration))
	kv("ts", s(w.TS))
	kv("result", s(w.Result))
	kv("error_code", w.ErrorCode)
	kv("reason", w.Reason)
	kv("target", w.Target)
	kv("user", w.Actor.User)
	if w.Actor.UID != nil {
		kv("uid", u(uint64(*w.Actor.UID)))
	}
	if w.Actor.GID != nil {
		kv("gid", u(uint64(*w.Actor.GID)))
	}
	if w.Actor.PID != nil {
		kv("pid", s(strconv.FormatInt(int64(*w.Actor.PID), 10)))
	}
	kv("comm", w.Actor.Comm)
	kv("role", w.Actor.Role)
	kv("client_id", w.ClientID)
	kv("connect_ts", w.ConnectTS)
	kv("socket", w.Socket)
	if ms := w.Extras.ElapsedMS; ms != nil {
		kv("elapsed_ms", s(strconv.FormatFloat(*ms, 'f', -1, 64)))
	}
	if f := w.Extras.Fanout; f != nil {
		kv("fanout", s(strconv.Itoa(*f)))
	}
	if wk := w.Extras.Workers; wk != nil {
		kv("workers_ok", s(strconv.Itoa(wk.OK)))
		kv("workers_err", s(strconv.Itoa(wk.Err)))
		kv("workers_expected", s(strconv.Itoa(wk.Expected)))
	}
	kv("request_sha256", w.Extras.RequestSHA256)
	kv("cert_sha256", w.Extras.CertSHA256)
	kv("key_sha256", w.Extras.KeySHA256)
	kv("version", w.Version)
	kv("git_sha", w.GitSHA)
	b.WriteString(")\n")
	return b.Bytes()
}

// escapeText writes an already sanitised value with the text form's
// escapes.
func escapeText(b *bytes.Buffer, v string, prefix bool) {
	if prefix && v == "-" {
		b.WriteString(`\-`)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' || c == ',' || c == '=':
			b.WriteByte('\\')
		case prefix && (c == ' ' || c == '[' || c == ']'):
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
}
