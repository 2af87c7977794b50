// Package audit is the compliance-grade trail of the Sōzu control plane:
// sanitised records, text and JSON sinks, a fail-closed broker, an HMAC chain and its verifier.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The JSON form of a record: a stable schema (docs/audit-record.schema.json),
// canonical bytes for the HMAC chain, and its decoder.

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
