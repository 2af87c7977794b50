package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func stamped(r *Record) *Record {
	r.Time = time.Date(2025, 3, 14, 15, 9, 26, 535897123, time.UTC)
	r.BootGeneration, r.Seq = 3, 41
	r.Version, r.GitSHA = "1.0.0", "abc123"
	return r
}

func TestTextForm(t *testing.T) {
	r := stamped(sample(testIDs(), "cluster.add"))
	r.SessionULID, r.RequestULID = "01JPBZ0000AAAAAAAAAAAAAAAA", "01JPBZ0000BBBBBBBBBBBBBBBB"
	r.Reason = "a, b = c\\d"
	r.BackendID = ""
	got := string(r.Text())
	want := "[01JPBZ0000AAAAAAAAAAAAAAAA 01JPBZ0000BBBBBBBBBBBBBBBB app1 -]\tAUDIT\tCommand(" +
		"verb=cluster.add, event=command.completed, code=SZ1001, seq=41, boot=3, ts=2025-03-14T15:09:26.535897Z, " +
		`result=ok, reason=a\, b \= c\\d, target=cluster app1, user=alice, uid=1000, gid=1000, pid=4242, comm=sozu, role=admin, ` +
		"client_id=7, connect_ts=2025-03-14T15:00:00.000000Z, socket=/run/sozu/sozu.sock, elapsed_ms=12, fanout=2, " +
		"workers_ok=2, workers_err=0, workers_expected=2, request_sha256=0123456789abcdef, version=1.0.0, git_sha=abc123)\n"
	if got != want {
		t.Errorf("text form:\n got %q\nwant %q", got, want)
	}
	p, err := parseText(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.kv["reason"] != r.Reason || p.prefix[2] != "app1" || p.prefix[3] != "" {
		t.Errorf("parsed back: %+v", p)
	}
}

func TestTextPrefixEscapes(t *testing.T) {
	r := stamped(&Record{Verb: "cluster.add", Code: CodeCommandAttempt, Result: ResultOK, ClusterID: "a b]c", BackendID: "-"})
	got := string(r.Text())
	if !strings.HasPrefix(got, `[- - a\ b\]c \-]`+"\t") {
		t.Errorf("prefix not escaped: %q", got)
	}
	p, err := parseText(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.prefix[2] != "a b]c" || p.prefix[3] != "-" {
		t.Errorf("prefix parsed back as %q", p.prefix)
	}
}

// TestJSONKeyOrder checks that every key is present, null when missing, in
// the schema's order, at every level.
func TestJSONKeyOrder(t *testing.T) {
	r := stamped(&Record{Verb: "supervisor.start", Code: CodeSupervisorStart, Result: ResultOK})
	w := r.wire()
	canonical, err := marshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	line := appendChain(canonical, strings.Repeat("ab", 32))
	if err := ValidateJSON(line); err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	var schema struct {
		Required   []string
		Properties map[string]struct{ Required []string }
	}
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	if got := topKeys(t, line); strings.Join(got, ",") != strings.Join(schema.Required, ",") {
		t.Errorf("key order\n got %v\nwant %v", got, schema.Required)
	}
	for _, k := range []string{`"session_ulid":null`, `"actor":{"uid":null,"gid":null,"pid":null,"user":null,"comm":null,"role":null}`,
		`"extras":{"elapsed_ms":null,"fanout":null,"workers":null,"request_sha256":null,"cert_sha256":null,"key_sha256":null}`,
		`"prev_seq":null,"prev_chain":null`} {
		if !bytes.Contains(line, []byte(k)) {
			t.Errorf("line lacks %s:\n%s", k, line)
		}
	}
	r2 := stamped(sample(testIDs(), "cluster.add"))
	w2 := r2.wire()
	c2, _ := marshalCanonical(&w2)
	if !bytes.Contains(c2, []byte(`"workers":{"ok":2,"err":0,"expected":2}`)) {
		t.Errorf("workers object: %s", c2)
	}
}

func topKeys(t *testing.T, line []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		t.Fatal("not an object")
	}
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	return keys
}

func TestReasonClampedOnRuneBoundary(t *testing.T) {
	r := stamped(&Record{Verb: "cluster.add", Code: CodeCommandCompleted, Result: ResultErr,
		Reason: strings.Repeat("é", 300) + "\x1b[2J"})
	w := r.wire()
	got := *w.Reason
	if n := utf8.RuneCountInString(got); n != MaxReason {
		t.Errorf("reason has %d runes, want %d", n, MaxReason)
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("reason cut badly: %q", got[len(got)-8:])
	}
	short := stamped(&Record{Verb: "cluster.add", Code: CodeCommandCompleted, Result: ResultErr, Reason: strings.Repeat("x", MaxReason)})
	if got := *short.wire().Reason; got != strings.Repeat("x", MaxReason) {
		t.Errorf("a reason of exactly %d runes was changed", MaxReason)
	}
}

func TestRecordCheck(t *testing.T) {
	ok := func() *Record { return &Record{Verb: "cluster.add", Code: CodeCommandAttempt, Result: ResultOK} }
	cases := []struct {
		name  string
		mod   func(*Record)
		field string
	}{
		{"unknown code", func(r *Record) { r.Code = "SZ9999" }, "code"},
		{"verb with space", func(r *Record) { r.Verb = "cluster add" }, "verb"},
		{"empty verb", func(r *Record) { r.Verb = "" }, "verb"},
		{"result", func(r *Record) { r.Result = "maybe" }, "result"},
		{"session ulid", func(r *Record) { r.SessionULID = "not-a-ulid" }, "session_ulid"},
		{"request ulid", func(r *Record) { r.RequestULID = "01JPBZ0000BBBBBBBBBBBBBBBU" }, "request_ulid"},
		{"sha", func(r *Record) { r.Extras.RequestSHA256 = "ABC" }, "extras.request_sha256"},
		{"cert sha", func(r *Record) { r.Extras.CertSHA256 = "00" }, "extras.cert_sha256"},
		{"fanout", func(r *Record) { n := -1; r.Extras.Fanout = &n }, "extras.fanout"},
	}
	if err := ok().check(); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	for _, c := range cases {
		r := ok()
		c.mod(r)
		var re *RecordError
		if err := r.check(); !errors.As(err, &re) || re.Field != c.field {
			t.Errorf("%s: got %v, want a RecordError on %s", c.name, err, c.field)
		}
	}
}

func TestDecodeJSONRoundTrip(t *testing.T) {
	r := stamped(sample(testIDs(), "backend.add"))
	r.BackendID = "b1"
	r.ErrorCode = "E42"
	r.Extras.CertSHA256 = strings.Repeat("c", 64)
	w := r.wire()
	canonical, err := marshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	line := appendChain(canonical, strings.Repeat("0", 64))
	got, link, err := DecodeJSON(line)
	if err != nil {
		t.Fatal(err)
	}
	if link.Chain != strings.Repeat("0", 64) || link.PrevSeq != nil {
		t.Errorf("link %+v", link)
	}
	want := *r
	want.Time = r.Time.Truncate(time.Microsecond)
	g, _ := json.Marshal(got)
	wnt, _ := json.Marshal(want)
	if !bytes.Equal(g, wnt) {
		t.Errorf("round trip:\n got %s\nwant %s", g, wnt)
	}
	c2, chain, err := splitChain(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil || !bytes.Equal(c2, canonical) || chain != strings.Repeat("0", 64) {
		t.Errorf("splitChain: %v %q", err, chain)
	}
}

func TestIDSource(t *testing.T) {
	a, b := testIDs(), testIDs()
	prev := ""
	for range 100 {
		x, y := a.New(), b.New()
		if x != y {
			t.Fatalf("same clock and entropy gave %s and %s", x, y)
		}
		if !ValidULID(x) || x <= prev {
			t.Fatalf("%q after %q: not a growing ULID", x, prev)
		}
		prev = x
	}
	if ValidULID("01JPBZ0000BBBBBBBBBBBBBBBU") || ValidULID("") {
		t.Error("ValidULID accepts junk")
	}
}
