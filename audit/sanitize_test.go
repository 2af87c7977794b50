package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	const R = "\uFFFD"
	cases := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"été 日本", "été 日本"},
		{"a\nb\rc\td\x00e\x7f", "a" + R + "b" + R + "c" + R + "d" + R + "e" + R},
		{"\x1b[31mred\x1b[0m", R + "red" + R},
		{"\x1b[1;31;42mX", R + "X"},
		{"\x1b[?25l", R},
		{"\x1b]0;title\x07after", R + "0;title" + R + "after"},
		{"\x1b]8;;http://x\x1b\\link", R + "8;;http://x" + R + "link"},
		{"\x1b(B\x1bc\x1b", R + R + R},
		{"\u009b31m", R + "31m"},
		{"\u0085next", R + "next"},
		{"abc\u202Edcba", "abc" + R + "dcba"},
		{"\u2066x\u2069\u200e\u200f\u061c", R + "x" + R + R + R + R},
		{"line\u2028sep\u2029", "line" + R + "sep" + R},
		{"bad \xff\xfe utf8 \xe2\x82", "bad " + R + R + " utf8 " + R + R},
		{"=,\\", "=,\\"},
	}
	for _, c := range cases {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// checkSafe asserts what Sanitize promises about its output.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Sanitize(%q) = %q: invalid UTF-8", in, out)
	}
	for _, r := range out {
		if unsafeRune(r) || r == 0x1B {
			t.Fatalf("Sanitize(%q) = %q: kept %U", in, out, r)
		}
	}
	if again := Sanitize(out); again != out {
		t.Fatalf("Sanitize is not idempotent on %q: %q", out, again)
	}
	if plainASCII(in) && out != in {
		t.Fatalf("printable ASCII %q changed to %q", in, out)
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "x", "\x1b[31m", "\x1b]0;t\x07", "\u202e", "\xff", "\u009b", "é\x1b", "\x1b[", "\x1b(("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSafe(t, s, Sanitize(s))
		if c := clean(s, 10); utf8.RuneCountInString(c) > 10 || !utf8.ValidString(c) {
			t.Fatalf("clean(%q, 10) = %q", s, c)
		}
	})
}

// FuzzRecord is the sanitiser's end-to-end property (issue 5): whatever
// the free-form fields hold, the text record is one line with no byte
// below 0x20 but its two TABs and its final newline, and parses back to
// the sanitised values; the JSON record validates against the schema and
// round-trips through encoding/json.
func FuzzRecord(f *testing.F) {
	f.Add("alice", "sozu", "app1", "b1", "cluster app1", "reason", "7", "/run/sozu.sock", "E1")
	f.Add("mal\nlory", "\x1b[31mevil", "a,b=c", "-", "x]\t[y", "\u202eevil\x00", "", "\xff\xfe", "\\")
	f.Add(strings.Repeat("é", 300), "c", "", "", strings.Repeat("=", 600), strings.Repeat("\x1b[", 200), "", "", "")
	f.Fuzz(func(t *testing.T, user, comm, cluster, backend, target, reason, client, socket, errCode string) {
		uid, gid, pid := uint32(1), uint32(2), int32(3)
		r := &Record{
			Time: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), BootGeneration: 1, Seq: 9,
			Actor:    Actor{UID: &uid, GID: &gid, PID: &pid, User: user, Comm: comm, Role: "admin"},
			ClientID: client, Socket: socket, Verb: "cluster.add", Code: CodeCommandCompleted,
			Target: target, Result: ResultErr, ErrorCode: errCode, Reason: reason, ClusterID: cluster, BackendID: backend,
			Version: "v", GitSHA: "g",
		}
		// Text: one line, no control byte but TAB, parses back.
		text := r.Text()
		if bytes.IndexByte(text, '\n') != len(text)-1 {
			t.Fatalf("text record is not one line: %q", text)
		}
		tabs := 0
		for _, c := range text[:len(text)-1] {
			if c == '\t' {
				tabs++
			} else if c < 0x20 || c == 0x7F {
				t.Fatalf("text record has byte %#x: %q", c, text)
			}
		}
		if tabs != 2 {
			t.Fatalf("text record has %d TABs: %q", tabs, text)
		}
		p, err := parseText(string(text))
		if err != nil {
			t.Fatalf("text record does not parse back: %v\n%q", err, text)
		}
		w := r.wire()
		want := map[string]*string{"user": w.Actor.User, "comm": w.Actor.Comm, "target": w.Target, "reason": w.Reason,
			"client_id": w.ClientID, "socket": w.Socket, "error_code": w.ErrorCode}
		for k, v := range want {
			got, present := p.kv[k]
			if (v == nil) == present || v != nil && got != *v {
				t.Fatalf("text %s = %q (present %v), want %v", k, got, present, deref(v))
			}
		}
		for i, v := range []*string{w.SessionULID, w.RequestULID, w.ClusterID, w.BackendID} {
			if p.prefix[i] != deref(v) {
				t.Fatalf("text prefix %d = %q, want %q", i, p.prefix[i], deref(v))
			}
		}
		// JSON: schema-valid, round-trips through encoding/json.
		canonical, err := marshalCanonical(&w)
		if err != nil {
			t.Fatal(err)
		}
		line := appendChain(canonical, strings.Repeat("f", 64))
		if err := ValidateJSON(line); err != nil {
			t.Fatalf("schema: %v\n%s", err, line)
		}
		var back wireLine
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("encoding/json: %v\n%s", err, line)
		}
		pairs := []struct {
			name      string
			got, want *string
		}{
			{"user", back.Actor.User, w.Actor.User}, {"comm", back.Actor.Comm, w.Actor.Comm},
			{"cluster_id", back.ClusterID, w.ClusterID}, {"backend_id", back.BackendID, w.BackendID},
			{"target", back.Target, w.Target}, {"reason", back.Reason, w.Reason},
			{"client_id", back.ClientID, w.ClientID}, {"socket", back.Socket, w.Socket},
			{"error_code", back.ErrorCode, w.ErrorCode},
		}
		for _, pr := range pairs {
			if (pr.got == nil) != (pr.want == nil) || pr.got != nil && *pr.got != *pr.want {
				t.Fatalf("JSON %s = %q, want %q", pr.name, deref(pr.got), deref(pr.want))
			}
			if pr.want != nil {
				checkSafe(t, *pr.want, *pr.want)
			}
		}
		if utf8.RuneCountInString(deref(w.Reason)) > MaxReason {
			t.Fatalf("reason longer than %d runes", MaxReason)
		}
	})
}

// BenchmarkRecordForms is the cost of one record's two forms and a schema
// check of the JSON one.
func BenchmarkRecordForms(b *testing.B) {
	r := stamped(sample(testIDs(), "cluster.add"))
	r.Reason = strings.Repeat("é\x1b[31m", 60)
	for b.Loop() {
		r.Text()
		w := r.wire()
		c, _ := marshalCanonical(&w)
		if err := ValidateJSON(appendChain(c, strings.Repeat("a", 64))); err != nil {
			b.Fatal(err)
		}
	}
}
