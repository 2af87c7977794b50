package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/router"
)

// get follows a dotted path in a decoded record.
func get(m map[string]any, path string) any {
	return accesslogtest.Field(m, strings.Split(path, ".")...)
}

// TestAccessLogRecords: one record per request, forwarded or answered by
// the proxy itself (404, 400), with the fields of the request, the
// frontend's tags and no full PAN.
func TestAccessLogRecords(t *testing.T) {
	b := echoBackend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, []router.Rule{
		{Hostname: "shop.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Key: "shop"}},
	}, map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.Tags = map[string]*accesslog.Tags{"shop": accesslog.NewTags(map[string]string{"team": "pay"})}
	}, Options{Access: al})

	ok := exchangeRaw(t, f.addr, "GET /pay?card=4111111111111111 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: agent/1\r\n"+closeReq)
	if !strings.HasPrefix(ok, "HTTP/1.1 200") {
		t.Fatalf("forwarded request: %q", ok)
	}
	recs := sink.JSON(t, 1)
	exchangeRaw(t, f.addr, "GET /x HTTP/1.1\r\nHost: other.test\r\n"+closeReq)
	recs = sink.JSON(t, 2)
	exchangeRaw(t, f.addr, "GET /x HTTP/1.1\r\nHost: shop.test\r\nBad Field: x\r\n"+closeReq)
	recs = sink.JSON(t, 3)

	want := []map[string]any{
		{"http.response.status_code": float64(200), "http.request.method": "GET", "url.domain": "shop.test", "url.path": "/pay",
			"url.query": "card=***", "user_agent.original": "agent/1", "labels.team": "pay", "sozu.cluster_id": "c",
			"sozu.backend_id": "c-a", "sozu.protocol": "http", "source.ip": "127.0.0.1"},
		{"http.response.status_code": float64(404), "url.domain": "other.test", "url.path": "/x"},
		{"http.response.status_code": float64(400)},
	}
	for i, w := range want {
		for k, v := range w {
			if got := get(recs[i], k); got != v {
				t.Errorf("record %d: %s = %v, want %v", i, k, got, v)
			}
		}
		if get(recs[i], "trace.id") == nil || get(recs[i], "sozu.session_id") == nil {
			t.Errorf("record %d without ids: %v", i, recs[i])
		}
	}
	// The times: the proxy's own (first byte to the backend's connect:
	// reading, parsing, routing) and the backend's add up to the whole.
	service, _ := get(recs[0], "sozu.service_time").(float64)
	response, _ := get(recs[0], "sozu.response_time").(float64)
	total, _ := get(recs[0], "event.duration").(float64)
	if service <= 0 || response <= 0 || service+response != total {
		t.Errorf("forwarded: service time %v + response time %v, want both > 0, adding up to the duration %v", service, response, total)
	}
	if service, total := get(recs[1], "sozu.service_time"), get(recs[1], "event.duration"); service != total || get(recs[1], "sozu.response_time") != nil {
		t.Errorf("answered by the proxy: service time %v, duration %v, response time %v; want the service time the whole", service, total, get(recs[1], "sozu.response_time"))
	}
	if in, _ := get(recs[0], "http.request.bytes").(float64); in == 0 {
		t.Errorf("bytes in = %v", in)
	}
	if out, _ := get(recs[0], "http.response.bytes").(float64); out == 0 {
		t.Errorf("bytes out = %v", out)
	}
	noFullPAN(t, sink)
}

// TestAccessLogHTTPVersion: the JSON record's http.version is the version
// the request was made in (ECS), HTTP/1.0 included.
func TestAccessLogHTTPVersion(t *testing.T) {
	b := echoBackend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil, Options{Access: al})
	for i, c := range []struct{ req, want string }{
		{"GET /v10 HTTP/1.0\r\nHost: shop.test\r\n\r\n", "1.0"},
		{"GET /v11 HTTP/1.1\r\nHost: shop.test\r\n" + closeReq, "1.1"},
	} {
		if resp := exchangeRaw(t, f.addr, c.req); !strings.HasPrefix(resp, "HTTP/1.1 200") {
			t.Fatalf("%q: answered %q", c.req, resp)
		}
		if got := get(sink.JSON(t, i+1)[i], "http.version"); got != c.want {
			t.Errorf("%q: http.version %v, want %s", c.req, got, c.want)
		}
	}
}

// BenchmarkProxyKeepAliveAccessLog is BenchmarkProxyKeepAlive with a JSON
// access log shipped over a real log channel.
func BenchmarkProxyKeepAliveAccessLog(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(b, resp)
	al, _ := accesslogtest.Channel(b, accesslog.JSON, false)
	f := newFixtureWith(b, anyHost("c"), map[string][]string{"c": {addr}}, nil, Options{Access: al})
	req := []byte("GET /?q=1 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	benchRoundTrips(b, f, req, 100, nil)
}

// TestAccessLogH2Streams: each HTTP/2 stream gets its own record, marked
// HTTP2, with its own request id and the connection's session id.
func TestAccessLogH2Streams(t *testing.T) {
	b := h2Backend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	conf := testTLSConfig(t, "a.test", "b.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al})
	c := h2Client("a.test")
	for _, p := range []string{"/one", "/missing-host"} {
		req, _ := http.NewRequest("GET", "https://"+f.addr+p, nil)
		req.Host = "a.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	recs := sink.JSON(t, 2)
	for i, r := range recs {
		if get(r, "sozu.protocol") != "https" || get(r, "tls.version") != "1.3" || get(r, "tls.next_protocol") != "h2" || get(r, "http.version") != "2" || get(r, "http.response.status_code") != float64(200) {
			t.Errorf("record %d: %v", i, r)
		}
	}
	if get(recs[0], "sozu.session_id") != get(recs[1], "sozu.session_id") || get(recs[0], "trace.id") == get(recs[1], "trace.id") {
		t.Errorf("streams of one connection: session ids %v %v, request ids %v %v", get(recs[0], "sozu.session_id"),
			get(recs[1], "sozu.session_id"), get(recs[0], "trace.id"), get(recs[1], "trace.id"))
	}
}

// TestAccessLogH2Malformed: an HTTP/2 request reset as malformed, by the
// HTTP/2 layer (a connection-specific field) or by the bridge (a target
// not in origin form), gets a record like a malformed HTTP/1.1 request:
// no status, a failure, the reason, the session's id, PANs masked; it
// counts in http.errors.
func TestAccessLogH2Malformed(t *testing.T) {
	b := h2Backend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	reg := metrics.New()
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al, Metrics: reg})
	h := dialH2(t, f)
	h.get(1, "/pay?card=4111111111111111", "connection", "keep-alive", "user-agent", "ua/1")
	h.get(3, "http://evil.example/4111111111111111", ":scheme", "foo")
	recs := sink.JSON(t, 2)
	for i, why := range []string{"connection-specific", "not writable as HTTP/1.1"} {
		r := recs[i]
		if get(r, "http.response.status_code") != nil || get(r, "event.outcome") != "failure" || get(r, "sozu.protocol") != "https" ||
			get(r, "sozu.session_id") == nil || get(r, "trace.id") == nil {
			t.Errorf("record %d: %v", i, r)
		}
		if reason, _ := get(r, "event.reason").(string); !strings.HasPrefix(reason, "malformed HTTP/2 request: ") || !strings.Contains(reason, why) {
			t.Errorf("record %d: reason %q, want one about %q", i, reason, why)
		}
	}
	if get(recs[0], "url.path") != "/pay" || get(recs[0], "user_agent.original") != "ua/1" || get(recs[0], "url.domain") != "a.test" {
		t.Errorf("record 0: %v", recs[0])
	}
	// A host field disputing :authority: neither is shown, as upstream.
	h.get(5, "/dispute", "host", "b.test", "connection", "keep-alive")
	recs = sink.JSON(t, 3)
	if get(recs[2], "url.path") != "/dispute" || get(recs[2], "http.request.method") != "GET" || get(recs[2], "url.domain") != nil {
		t.Errorf("record 2, a host field disputing :authority: %v", recs[2])
	}
	noFullPAN(t, sink)
	if n := reg.Snapshot().GetProxy()[pm.HTTPErrors].GetCount(); n != 3 {
		t.Errorf("http.errors = %d, want 3", n)
	}
}

// TestAccessLogH2MalformedASCIIFields: the :method, :path and
// :authority of an HTTP/2 request reset as malformed are shown as the
// client sent them, and HTTP/2 lets them hold spaces: in the ascii line a
// space there is %20, so that the endpoint keeps its four fields and the
// client cannot forge a status (the stream was reset: "-").
func TestAccessLogH2MalformedASCIIFields(t *testing.T) {
	b := h2Backend(t)
	al, sink := accesslogtest.Channel(t, accesslog.Ascii, true)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al})
	h := dialH2(t, f)
	h.get(1, "/forged 200 x", ":method", "GET /admin", ":authority", "evil.test 1.2.3.4")
	waitFor(t, "the malformed request's record", func() bool { return len(sink.Raw()) == 1 })
	line := string(sink.Raw()[0])
	_, endpoint, ok := strings.Cut(line, "] None ")
	if !ok || strings.Count(line, "\n") != 1 {
		t.Fatalf("record %q", line)
	}
	if want := "https evil.test%201.2.3.4 GET%20/admin /forged%20200%20x -\n"; endpoint != want {
		t.Errorf("endpoint %q, want %q", endpoint, want)
	}
}

// TestAccessLogH2MalformedNoCredentials: an HTTP/2 request reset for
// the userinfo of its :authority, or for an absolute-form :path, would
// show credentials ("alice:s3cret@") in its record, which shows what it
// sent: the userinfo is "***" in every format.
func TestAccessLogH2MalformedNoCredentials(t *testing.T) {
	b := h2Backend(t)
	for _, format := range []accesslog.Format{accesslog.Ascii, accesslog.JSON, accesslog.Protobuf} {
		al, sink := accesslogtest.Channel(t, format, true)
		conf := testTLSConfig(t, "a.test")
		conf.NextProtos = []string{"h2"}
		f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al})
		h := dialH2(t, f)
		h.get(1, "/x", ":authority", "alice:s3cret@a.test")
		h.get(3, "http://bob:pw@b.test/y")
		waitFor(t, "the malformed requests' records", func() bool { return len(sink.Raw()) == 2 })
		for _, r := range sink.Raw() {
			if bytes.Contains(r, []byte("s3cret")) || bytes.Contains(r, []byte("bob:pw")) || !bytes.Contains(r, []byte("***@")) {
				t.Errorf("%v: record %q", format, r)
			}
		}
	}
}

// TestAccessLogScanRefusedHead: a head the scanner refuses before its end
// (too large, a bare LF in a field) shows what was valid of it, as one the
// parse refuses: the method and target of a valid request line, the host
// only when the request line carried it; nothing of a request line too
// long (414).
func TestAccessLogScanRefusedHead(t *testing.T) {
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": nil}, nil, Options{Access: al})
	big := strings.Repeat("a", 20000)
	for i, c := range []struct {
		name, req, status  string
		method, path, host any
	}{
		{"head too large", "GET /big?card=4111111111111111 HTTP/1.1\r\nHost: shop.test\r\nX-Big: " + big + "\r\n\r\n", "431", "GET", "/big", nil},
		{"absolute-form, head too large", "GET http://shop.test/abs HTTP/1.1\r\nHost: shop.test\r\nX-Big: " + big + "\r\n\r\n", "431", "GET", "/abs", "shop.test"},
		{"bare LF in a field", "POST /lf HTTP/1.1\r\nHost: shop.test\nX: y\r\n\r\n", "400", "POST", "/lf", nil},
		{"request line too long", "GET /" + big[:10000] + " HTTP/1.1\r\nHost: shop.test\r\n\r\n", "414", "", "", nil},
	} {
		if resp := exchangeRaw(t, f.addr, c.req); !strings.HasPrefix(resp, "HTTP/1.1 "+c.status) {
			t.Fatalf("%s: answered %.40q, want %s", c.name, resp, c.status)
		}
		rec := sink.JSON(t, i+1)[i]
		for k, want := range map[string]any{"http.request.method": c.method, "url.path": c.path, "url.domain": c.host} {
			if got := get(rec, k); got != want {
				t.Errorf("%s: %s = %v, want %v", c.name, k, got, want)
			}
		}
	}
	noFullPAN(t, sink)
}

// TestAccessLogH2HeadTooLarge: an HTTP/2 request whose head is too large
// for HTTP/1.1 is answered 431; its record shows its method, path and
// :authority (as a malformed stream's) and counts its head (in its HTTP/1.1 form, as a stream's), and so does
// bytes_in.
func TestAccessLogH2HeadTooLarge(t *testing.T) {
	b := h2Backend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	reg := metrics.New()
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al, Metrics: reg})
	h := dialH2(t, f)
	h.get(1, "/big?card=4111111111111111", "x-big", strings.Repeat("a", 20000))
	r := sink.JSON(t, 1)[0]
	in, _ := get(r, "http.request.bytes").(float64)
	if get(r, "http.response.status_code") != float64(431) || get(r, "http.request.method") != "GET" || get(r, "url.path") != "/big" ||
		get(r, "url.domain") != "a.test" || in <= 20000 {
		t.Errorf("record: %v", r)
	}
	waitFor(t, "the 431 recorded", func() bool { return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1 })
	if got := reg.Snapshot().GetProxy()[pm.BytesIn].GetCount(); got != int64(in) {
		t.Errorf("%s = %d, the record says %v", pm.BytesIn, got, in)
	}
}

// TestAccessLogH2HeadTooLargeOwnID: the 431 of an HTTP/2 stream whose
// head is too large has a request id of its own, never that of an earlier
// stream whose session the pool gave it again (it kept it: two records,
// one id); after HEADs, the answer keeps its body.
func TestAccessLogH2HeadTooLargeOwnID(t *testing.T) {
	b := h2Backend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al})
	h := dialH2(t, f)
	ids := map[any]bool{}
	for i := range 5 {
		id := uint32(4*i + 1)
		h.get(id, "/ok", ":method", "HEAD")
		recs := sink.JSON(t, 2*i+1)
		h.get(id+2, "/big", "x-big", strings.Repeat("a", 20000))
		recs = sink.JSON(t, 2*i+2)
		for _, r := range recs[2*i:] {
			if id := get(r, "trace.id"); ids[id] {
				t.Fatalf("request id %v given twice: %v", id, recs)
			} else {
				ids[id] = true
			}
		}
		if r := recs[2*i+1]; get(r, "http.response.status_code") != float64(431) {
			t.Fatalf("record of the large head: %v", r)
		} else if out, _ := get(r, "http.response.bytes").(float64); out <= float64(len("HTTP/1.1 431 \r\n\r\n")+100) {
			t.Errorf("the 431 after a HEAD: %v bytes, without its body", out)
		}
	}
}

// noFullPAN fails t when a record sink received holds the test PAN whole.
func noFullPAN(t *testing.T, sink *accesslogtest.Sink) {
	t.Helper()
	for _, r := range sink.Raw() {
		if bytes.Contains(r, []byte("4111111111111111")) {
			t.Errorf("full PAN in %s", r)
		}
	}
}
