// Package audit is the compliance-grade trail of the Sōzu control plane:
// sanitised records, text and JSON sinks, a fail-closed broker, an HMAC chain and its verifier.
package audit

import (
	"bytes"
	"strconv"
)

// The text form of a record: one line of key=value fields.

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
