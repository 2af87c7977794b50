package accesslog

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/logmask"
)

var (
	sessionID = ulid.MustParse("01JEAAAAAAAAAAAAAAAAAAAAAA")
	requestID = ulid.MustParse("01JEBBBBBBBBBBBBBBBBBBBBBB")
	t0        = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
)

func httpRecord() *Record {
	return &Record{
		Protocol: HTTPS, SessionID: sessionID, RequestID: requestID,
		Start: t0, End: t0.Add(25 * time.Millisecond),
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Backend: netip.MustParseAddrPort("[2001:db8::1]:8080"),
		Listener: "0.0.0.0:443", ClusterID: "shop", BackendID: "shop-0",
		Method: []byte("GET"), Host: []byte("shop.example.com"), Target: []byte("/pay?card=4111111111111111&n=2"),
		Status: 200, UserAgent: []byte("curl/8 [x] 4111111111111111"),
		BytesIn: 120, BytesOut: 3400, BackendTime: 20 * time.Millisecond,
		Tags: NewTags(map[string]string{"team": "pay", "env": "prod"}),
	}
}

func TestASCIILayout(t *testing.T) {
	e := Encoder{Format: Ascii, Tag: "WRK-00", PID: 42}
	got := string(e.Append(nil, httpRecord()))
	want := "2026-12-06T08:00:00.025000Z 1796544000025000000 42 INFO-ACCESS  WRK-00\t[" + sessionID.String() + " " + requestID.String() +
		" shop shop-0] 192.0.2.7:40000 [2001:db8::1]:8080 25ms/5000μs/20ms/-/- 120 3400 [env=prod, team=pay, user-agent=curl/8_{x}_411111******1111] None https shop.example.com GET /pay?card=***&n=*** 200\n"
	if got != want {
		t.Errorf("ascii:\n got %q\nwant %q", got, want)
	}
	tcp := &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0.Add(3 * time.Second),
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), BytesIn: 5, BytesOut: 7, ClusterID: "db"}
	got = string(e.Append(nil, tcp))
	want = "2026-12-06T08:00:03.000000Z 1796544003000000000 42 INFO-ACCESS  WRK-00\t[" + sessionID.String() + " " + sessionID.String() + " db -] 192.0.2.7:40000 - 3000ms/3000ms/-/-/- 5 7 [] None TCP -\n"
	if got != want {
		t.Errorf("ascii tcp:\n got %q\nwant %q", got, want)
	}
}

func TestASCIIControlBytesStayOnOneLine(t *testing.T) {
	r := httpRecord()
	r.Target = []byte("/a\nb\x1b[31m")
	r.Host = []byte("h\r\nX: y")
	r.UserAgent = []byte("u\na\tb")
	line := (&Encoder{Format: Ascii}).Append(nil, r)
	if bytes.Count(line, []byte("\n")) != 1 || bytes.ContainsAny(line[:len(line)-1], "\r\x1b") || bytes.Count(line, []byte("\t")) != 1 {
		t.Errorf("line not sanitised: %q", line)
	}
}

// TestASCIIIdsAndTagsCannotShiftFields: cluster and backend ids and tags
// may hold spaces, brackets, commas and equal signs (as upstream's);
// in the ascii line those are percent-encoded, so that the context keeps
// its four fields, the tags list its entries and its end, and an id "-"
// does not read as a missing one.
func TestASCIIIdsAndTagsCannotShiftFields(t *testing.T) {
	r := httpRecord()
	r.ClusterID, r.BackendID = "shop ] 1.2.3.4:5 - 1ms", "-"
	r.Tags = NewTags(map[string]string{"a b": "x], user-agent=forged] None https evil GET /admin 200", "k=": "50%"})
	r.UserAgent = []byte("curl")
	r.Backend = netip.MustParseAddrPort("192.0.2.8:8080") // no brackets of its own
	got := string((&Encoder{Format: Ascii}).Append(nil, r))
	ctx := "[" + sessionID.String() + " " + requestID.String() + " shop%20%5D%201.2.3.4:5%20-%201ms %2D] "
	tags := "[a%20b=x%5D%2C%20user-agent%3Dforged%5D%20None%20https%20evil%20GET%20/admin%20200, k%3D=50%25, user-agent=curl] None https "
	if !strings.Contains(got, ctx) || !strings.Contains(got, tags) {
		t.Errorf("ascii:\n got %q\nwant %q and %q in it", got, ctx, tags)
	}
	// The line still splits into upstream's fields: the context's four,
	// then the client, the backend… and one tags list.
	_, rest, _ := strings.Cut(got, "\t[")
	inside, _, _ := strings.Cut(rest, "]")
	if f := strings.Fields(inside); len(f) != 4 {
		t.Errorf("context %q: %d fields, want 4", inside, len(f))
	}
	if n := strings.Count(got, "]"); n != 2 {
		t.Errorf("%d ']' in %q, want 2 (context, tags)", n, got)
	}
}

// TestASCIIEndpointFieldsCannotShift: the host, method and target a
// client sent are shown as decoded for a request refused as malformed,
// where HTTP/2 lets a :path, :method or :authority hold a space: a space
// is percent-encoded there, so that no value adds a field to the endpoint
// ("<host> <method> <target> <status>") nor forges its status, and a
// value "-" is %2D, never read as a missing one.
func TestASCIIEndpointFieldsCannotShift(t *testing.T) {
	r := httpRecord()
	r.Status = 0 // reset, not answered
	r.Host, r.Method, r.Target = []byte("evil.test GET /x 200"), []byte("GET /admin"), []byte("/a 200")
	got := string((&Encoder{Format: Ascii}).Append(nil, r))
	want := " None https evil.test%20GET%20/x%20200 GET%20/admin /a%20200 -\n"
	if !strings.HasSuffix(got, want) {
		t.Errorf("ascii:\n got %q\nwant it to end with %q", got, want)
	}
	_, endpoint, _ := strings.Cut(got, "] None ")
	if f := strings.Fields(endpoint); len(f) != 5 || f[4] != "-" {
		t.Errorf("endpoint %q: fields %q, want protocol, host, method, target and status -", endpoint, f)
	}
	r.Host, r.Method, r.Target = []byte("-"), []byte("-"), []byte("-")
	if got := string((&Encoder{Format: Ascii}).Append(nil, r)); !strings.HasSuffix(got, " https %2D %2D %2D -\n") {
		t.Errorf("values \"-\": %q", got)
	}
}

// TestASCIIWideSpacesCannotShiftFields: Go's strings.Fields and Python's
// str.split() split a line at a no-break or other Unicode space as at a
// space, and an id (which may hold one), a tag or a value a client sent
// may hold one: in ids, tags and the endpoint it is percent-encoded byte
// by byte (%C2%A0), in the user agent it is '_', like a space.
func TestASCIIWideSpacesCannotShiftFields(t *testing.T) {
	for _, sp := range []string{"\u00a0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f", "\u3000"} {
		r := httpRecord()
		r.Status = 0
		r.ClusterID, r.BackendID = "shop"+sp+"x", "b"+sp+"1"
		r.Tags = NewTags(map[string]string{"k" + sp + "k": "v" + sp + "v"})
		r.UserAgent = []byte("curl" + sp + "8," + sp + "team=admin")
		r.Host, r.Method, r.Target = []byte("h"+sp+"200"), []byte("GET"+sp+"/x"), []byte("/a"+sp+"200")
		line := string((&Encoder{Format: Ascii}).Append(nil, r))
		if strings.Contains(line, sp) {
			t.Errorf("%U left in %q", []rune(sp)[0], line)
		}
		_, rest, _ := strings.Cut(line, "\t[")
		ctx, rest, _ := strings.Cut(rest, "] ")
		if f := strings.Fields(ctx); len(f) != 4 {
			t.Errorf("%U: context %q has %d fields, want 4", []rune(sp)[0], ctx, len(f))
		}
		_, endpoint, _ := strings.Cut(rest, "] None ")
		if f := strings.Fields(endpoint); len(f) != 5 || f[4] != "-" {
			t.Errorf("%U: endpoint %q: fields %q", []rune(sp)[0], endpoint, f)
		}
		tags, _, _ := strings.Cut(rest, "] None ")
		tags = tags[strings.LastIndex(tags, " [")+2:]
		if f := strings.Fields(tags); len(f) != 2 || !strings.HasPrefix(f[1], "user-agent=curl_8,_team=admin") {
			t.Errorf("%U: tags %q: fields %q", []rune(sp)[0], tags, f)
		}
	}
}

// A terminal reading the ascii log (tail, less -r, a latin-1 console)
// must not meet control sequences either: C1 controls (CSI as U+009B or
// as a lone 0x9b byte), bytes that are not UTF-8, bidirectional marks and
// overrides, and line separators become '?'.
func TestASCIINoTerminalControls(t *testing.T) {
	for _, in := range []string{"\xc2\x9b31m", "\x9b31m", "\x1b\x9b", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\xa8", "\xff\xfe", "\xe2\x80", "\u200e", "\u200f", "\u061c"} {
		raw := []byte(in)
		r := httpRecord()
		r.Target, r.Host, r.UserAgent = append([]byte("/a"), raw...), append([]byte("h"), raw...), append([]byte("u"), raw...)
		for _, colored := range []bool{false, true} {
			line := (&Encoder{Format: Ascii, Colored: colored}).Append(nil, r)
			if !utf8.Valid(line) {
				t.Errorf("%q (colored %v): line not UTF-8: %q", in, colored, line)
			}
			for _, c := range string(line) {
				if (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029 ||
					c == 0x200e || c == 0x200f || c == 0x061c {
					t.Errorf("%q (colored %v): %U in %q", in, colored, c, line)
				}
			}
		}
	}
}

func TestDurations(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{5, "5ns"}, {9999, "9999ns"}, {10 * time.Microsecond, "10μs"}, {9 * time.Millisecond, "9000μs"},
		{10 * time.Millisecond, "10ms"}, {9999 * time.Millisecond, "9999ms"}, {12 * time.Second, "12s"}} {
		if got := string(appendDuration(nil, tt.d, true)); got != tt.want {
			t.Errorf("appendDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestProtobufDecodesWithTheSchema(t *testing.T) {
	e := Encoder{Format: Protobuf, Tag: "WRK-01"}
	b := e.Append(nil, httpRecord())
	if !bytes.HasSuffix(b, []byte{0, 0}) {
		t.Fatalf("no two zero bytes after the record: % x", b[len(b)-4:])
	}
	var m command.ProtobufAccessLog
	if err := protodelim.UnmarshalFrom(bytes.NewReader(b), &m); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	ep := m.GetEndpoint().GetHttp()
	checks := []struct {
		name      string
		got, want any
	}{
		{"request_id", ulidOf(m.GetRequestId()), requestID},
		{"session_id", ulidOf(m.GetSessionId()), sessionID},
		{"cluster_id", m.GetClusterId(), "shop"},
		{"backend_id", m.GetBackendId(), "shop-0"},
		{"session_address port", m.GetSessionAddress().GetPort(), uint32(40000)},
		{"session_address ip", m.GetSessionAddress().GetIp().GetV4(), uint32(0xc0000207)},
		{"backend_address v6 high", m.GetBackendAddress().GetIp().GetV6().GetHigh(), uint64(0x20010db800000000)},
		{"protocol", m.GetProtocol(), "https"},
		{"method", ep.GetMethod(), "GET"},
		{"authority", ep.GetAuthority(), "shop.example.com"},
		{"path", ep.GetPath(), "/pay?card=***&n=***"},
		{"status", ep.GetStatus(), uint32(200)},
		{"service_time", m.GetServiceTime(), uint64(5000)},
		{"response_time", m.GetResponseTime(), uint64(20000)},
		{"request_time", m.GetRequestTime(), uint64(25000)},
		{"bytes_in", m.GetBytesIn(), uint64(120)},
		{"bytes_out", m.GetBytesOut(), uint64(3400)},
		{"user_agent", m.GetUserAgent(), "curl/8 [x] 411111******1111"},
		{"tags", m.GetTags()["team"] + m.GetTags()["env"], "payprod"},
		{"tag", m.GetTag(), "WRK-01"},
		{"time", m.GetTime().GetLow(), uint64(t0.Add(25 * time.Millisecond).UnixNano())},
		{"start_time", m.GetStartTime().GetLow(), uint64(t0.UnixNano())},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	tcp := &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0}
	m.Reset()
	if err := protodelim.UnmarshalFrom(bytes.NewReader(e.Append(nil, tcp)), &m); err != nil || m.GetEndpoint().GetTcp() == nil {
		t.Errorf("tcp record: %v, endpoint %v", err, m.GetEndpoint())
	}
}

// TestProtobufStringsAreUTF8: every string of a ProtobufAccessLog is a
// Rust String for upstream's decoder (prost), which refuses the whole
// record when one is not UTF-8. What a client sent as obs-text (a
// User-Agent, an HTTP/2 :method, :path or :authority, a TLS server name,
// which crypto/tls takes as any bytes) arrives with U+FFFD in place of
// each byte that is not UTF-8, the rest as sent.
func TestProtobufStringsAreUTF8(t *testing.T) {
	r := httpRecord()
	r.Method, r.Host, r.Target, r.UserAgent = []byte("G\xffT"), []byte("h\xfe.test"), []byte("/p\xc3"), []byte("ua\x80é")
	r.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "S\xffni.test"})
	b := (&Encoder{Format: Protobuf, Tag: "WRK-00"}).Append(nil, r)
	var m command.ProtobufAccessLog
	if err := protodelim.UnmarshalFrom(bytes.NewReader(b), &m); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	var bad []string
	var walk func(protoreflect.Message, string)
	walk = func(pm protoreflect.Message, path string) {
		pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsMap():
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					if !utf8.ValidString(k.String()) || !utf8.ValidString(mv.String()) {
						bad = append(bad, path+string(fd.Name()))
					}
					return true
				})
			case fd.Kind() == protoreflect.StringKind && !utf8.ValidString(v.String()):
				bad = append(bad, fmt.Sprintf("%s%s %q", path, fd.Name(), v.String()))
			case fd.Kind() == protoreflect.MessageKind && !fd.IsList():
				walk(v.Message(), path+string(fd.Name())+".")
			}
			return true
		})
	}
	walk(m.ProtoReflect(), "")
	if len(bad) > 0 {
		t.Errorf("strings not UTF-8: %v", bad)
	}
	ep := m.GetEndpoint().GetHttp()
	for _, c := range [][2]string{{ep.GetMethod(), "G\uFFFDT"}, {ep.GetAuthority(), "h\uFFFD.test"}, {ep.GetPath(), "/p\uFFFD"},
		{m.GetUserAgent(), "ua\uFFFDé"}, {m.GetTlsSni(), "s\uFFFDni.test"}} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
}

// ecsFields are the fields the JSON format promises (issue 15, item 1).
var ecsFields = []string{"@timestamp", "event.duration", "http.request.method", "http.response.status_code",
	"url.domain", "url.path", "source.ip", "source.port", "user_agent.original", "labels", "trace.id"}

// lookup follows a dotted ECS path in a decoded object.
func lookup(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(path, ".")
	if !ok {
		return nil, false
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(sub, rest)
}

func TestJSONFields(t *testing.T) {
	b := (&Encoder{Format: JSON}).Append(nil, httpRecord())
	if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("not one line: %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for _, f := range ecsFields {
		if _, ok := lookup(m, f); !ok {
			t.Errorf("field %s missing: %s", f, b)
		}
	}
	want := map[string]any{"event.duration": float64(25e6), "http.request.method": "GET", "http.response.status_code": float64(200),
		"url.domain": "shop.example.com", "url.path": "/pay", "url.query": "card=***&n=***", "source.ip": "192.0.2.7",
		"source.port": float64(40000), "destination.ip": "2001:db8::1", "user_agent.original": "curl/8 [x] 411111******1111",
		"labels.team": "pay", "trace.id": requestID.String(), "sozu.session_id": sessionID.String(), "sozu.cluster_id": "shop",
		"@timestamp": "2026-12-06T08:00:00.025Z"}
	for k, v := range want {
		if got, _ := lookup(m, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}

// TestJSONOutcome: event.outcome follows Record.Failure, the rule of the
// log level too: an HTTP request without an answer or answered 4xx/5xx,
// a stream ended by a backend error.
func TestJSONOutcome(t *testing.T) {
	tcp := func(reason string) *Record {
		return &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0, EndReason: reason}
	}
	status := func(code int) *Record { r := httpRecord(); r.Status = code; return r }
	for _, c := range []struct {
		name string
		r    *Record
		want string
	}{
		{"200", status(200), "success"}, {"304", status(304), "success"}, {"404", status(404), "failure"},
		{"429", status(429), "failure"}, {"502", status(502), "failure"}, {"no answer", status(0), "failure"},
		{"tcp", tcp(""), "success"}, {"tcp backend error", tcp("backend error"), "failure"},
	} {
		var m map[string]any
		b := (&Encoder{Format: JSON}).Append(nil, c.r)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, b)
		}
		if got, _ := lookup(m, "event.outcome"); got != c.want {
			t.Errorf("%s: event.outcome = %v, want %s", c.name, got, c.want)
		}
	}
}

func TestJSONEscapes(t *testing.T) {
	r := httpRecord()
	r.Target = []byte("/\"q\\\x01\xff?k=v")
	r.UserAgent = []byte("a\"b\n")
	var m map[string]any
	b := (&Encoder{Format: JSON, Query: logmask.QueryKeep}).Append(nil, r)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if got, _ := lookup(m, "url.path"); got != "/\"q\\\x01\ufffd" {
		t.Errorf("url.path = %q", got)
	}
	if got, _ := lookup(m, "url.query"); got != "k=v" {
		t.Errorf("url.query = %q", got)
	}
}

// TestJSONNoTerminalControls: a JSON record tailed on a terminal or
// opened in a viewer must not obey what a client sent either: C1
// controls (CSI U+009B), bidirectional marks, overrides and isolates, and
// the line and paragraph separators are written \uXXXX, which a JSON
// reader reads back as sent.
func TestJSONNoTerminalControls(t *testing.T) {
	for _, in := range []string{"\u009b31m", "\u0085", "\u202e", "\u2066", "\u200f", "\u061c", "\u2028", "\u2029"} {
		r := httpRecord()
		r.Target, r.Host, r.UserAgent = []byte("/a"+in), []byte("h"+in), []byte("u"+in)
		r.Tags = NewTags(map[string]string{"k" + in: "v" + in})
		r.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "s" + in})
		b := (&Encoder{Format: JSON, Query: logmask.QueryKeep}).Append(nil, r)
		for _, c := range string(b) {
			if (c >= 0x80 && c <= 0x9f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200f || c == 0x061c {
				t.Errorf("%q: %U in %s", in, c, b)
			}
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%q: %v: %s", in, err, b)
		}
		for path, want := range map[string]string{"url.path": "/a" + in, "url.domain": "h" + in, "user_agent.original": "u" + in,
			"labels.k" + in: "v" + in, "tls.client.server_name": "s" + in} {
			if got, _ := lookup(m, path); got != want {
				t.Errorf("%s = %q, want %q", path, got, want)
			}
		}
	}
}

func TestNoPANInAnyFormat(t *testing.T) {
	pan := regexp.MustCompile(`4111(%20|%2D| |-)?1111(%20|%2D| |-)?1111(%20|%2D| |-)?1111`)
	for _, host := range []string{"shop.example.com", "4111111111111111.example.com", "4111-1111-1111-1111"} {
		for _, target := range []string{"/pay?card=4111111111111111&n=2", "/pay/4111%201111%201111%201111?x=4111%2D1111%2D1111%2D1111",
			"/s/%224111111111111111%22", "/s/%34111111111111111"} {
			r := httpRecord()
			r.Host, r.Target = []byte(host), []byte(target)
			if host != "shop.example.com" {
				r.Method = []byte("M" + host) // any token is a method
			}
			for _, f := range []Format{Ascii, Protobuf, JSON} {
				for _, q := range []logmask.QueryMode{logmask.QueryMask, logmask.QueryKeep, logmask.QueryDrop} {
					b := (&Encoder{Format: f, Query: q}).Append(nil, r)
					if pan.Match(b) {
						t.Errorf("%v/%v, host %q, target %q: full PAN in %q", f, q, host, target, b)
					}
				}
			}
		}
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	r := httpRecord()
	dst := make([]byte, 0, 4096)
	for _, f := range []Format{Ascii, Protobuf, JSON} {
		e := Encoder{Format: f, Tag: "WRK-00"}
		if n := testing.AllocsPerRun(100, func() { dst = e.Append(dst[:0], r) }); n != 0 {
			t.Errorf("%v: %v allocations per record", f, n)
		}
	}
}

// TestASCIIColoredIsPlainWithEscapes: access_logs_colored only adds ANSI
// sequences to the plain layout.
func TestASCIIColoredIsPlainWithEscapes(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, status := range []int{200, 302, 404, 503} {
		r := httpRecord()
		r.Status = status
		plain := (&Encoder{Format: Ascii, Tag: "WRK-00"}).Append(nil, r)
		colored := (&Encoder{Format: Ascii, Tag: "WRK-00", Colored: true}).Append(nil, r)
		if bytes.Equal(plain, colored) {
			t.Fatalf("status %d: no colour", status)
		}
		if got := ansi.ReplaceAll(colored, nil); !bytes.Equal(got, plain) {
			t.Errorf("status %d: colored without escapes\n%q\nplain\n%q", status, got, plain)
		}
	}
}

// A record's stamped end less its start is its request time, to the
// nanosecond, in JSON (@timestamp, event.start, event.duration) and
// protobuf (time, start_time, request_time in µs), for clock readings as
// the proxy takes them: each holds a wall and a monotonic reading taken a
// few nanoseconds apart, and a request time is measured on the monotonic
// clock.
func TestStampedEndIsStartPlusRequestTime(t *testing.T) {
	for i := range 200 {
		r := httpRecord()
		r.Start = time.Now()
		r.End = time.Now()
		r.BackendTime = 0
		var j struct {
			Timestamp time.Time `json:"@timestamp"`
			Event     struct {
				Start    time.Time `json:"start"`
				Duration int64     `json:"duration"`
			} `json:"event"`
		}
		if err := json.Unmarshal((&Encoder{Format: JSON}).Append(nil, r), &j); err != nil {
			t.Fatal(err)
		}
		if got := j.Timestamp.Sub(j.Event.Start); got != time.Duration(j.Event.Duration) {
			t.Fatalf("reading %d: @timestamp - event.start = %v, event.duration = %v", i, got, time.Duration(j.Event.Duration))
		}
		var m command.ProtobufAccessLog
		if err := protodelim.UnmarshalFrom(bytes.NewReader((&Encoder{Format: Protobuf}).Append(nil, r)), &m); err != nil {
			t.Fatal(err)
		}
		if d := m.GetTime().GetLow() - m.GetStartTime().GetLow(); d != uint64(r.RequestTime()) || d/1000 != m.GetRequestTime() {
			t.Fatalf("reading %d: time - start_time = %d ns, request_time %d µs (%v)", i, d, m.GetRequestTime(), r.RequestTime())
		}
	}
}

// TestJSONLabelsAreFlat: ECS labels are flat keyword fields. Elasticsearch
// expands a dotted key into objects (tags "a" and "a.b" then conflict and
// the record is refused at ingest) and refuses an empty field name. Label
// keys carry no '.', '*' or '"', none is empty, none appears twice, and no
// tag is lost; keys that need no change keep their name.
func TestJSONLabelsAreFlat(t *testing.T) {
	tags := map[string]string{"a": "1", "a.b": "2", "a_b": "3", "": "4", "x*y": "5", `q"`: "6", ".": "7", "_": "8", "env": "prod"}
	r := httpRecord()
	r.Tags = NewTags(tags)
	line := (&Encoder{Format: JSON}).Append(nil, r)
	var rec struct {
		Labels json.RawMessage `json:"labels"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Labels))
	dec.Token() // {
	keys := map[string]bool{}
	var values []string
	for dec.More() {
		k, _ := dec.Token()
		v, _ := dec.Token()
		key := k.(string)
		if key == "" || strings.ContainsAny(key, `.*"`) {
			t.Errorf("label key %q", key)
		}
		if keys[key] {
			t.Errorf("label key %q twice", key)
		}
		keys[key] = true
		values = append(values, v.(string))
	}
	if len(values) != len(tags) {
		t.Errorf("%d labels for %d tags: %s", len(values), len(tags), rec.Labels)
	}
	for _, k := range []string{"a", "a_b", "_", "env"} {
		if !keys[k] {
			t.Errorf("key %q renamed: %s", k, rec.Labels)
		}
	}
	slices.Sort(values)
	if got := strings.Join(values, ","); got != "1,2,3,4,5,6,7,8,prod" {
		t.Errorf("values %s", got)
	}
	// The other formats keep the tags as they are.
	if ascii := (&Encoder{Format: Ascii}).Append(nil, r); !bytes.Contains(ascii, []byte("a.b=2")) {
		t.Errorf("ascii: %s", ascii)
	}
}
