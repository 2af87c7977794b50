package http1

import "testing"

var xff = Field{Name: []byte("X-Forwarded-For"), Value: []byte("192.0.2.1")}

func TestAppendRequest(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		extra []Field
		want  string
	}{
		{"hop-by-hop dropped, absolute-form to origin-form, framing rewritten",
			head("GET http://a.example/p?q HTTP/1.1", "Host: other", "Connection: keep-alive, X-Hop",
				"Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "TE: gzip", "X-Hop: secret",
				"Accept: */*", "Expect: 100-continue", "Content-Length: 0005", "Trailer: X-Sum"),
			[]Field{xff},
			head("GET /p?q HTTP/1.1", "Host: a.example", "Accept: */*", "Trailer: X-Sum", "Content-Length: 5",
				"Expect: 100-continue", "X-Forwarded-For: 192.0.2.1")},
		// The client takes trailers: so does the proxy, which says so to
		// the backend (gRPC servers want it) with its own TE.
		{"TE: trailers regenerated with its connection option",
			head("POST /g HTTP/1.1", "Host: a", "TE: gzip, trailers", "Connection: TE, close", "Content-Length: 0"),
			nil,
			head("POST /g HTTP/1.1", "Host: a", "Content-Length: 0", "TE: trailers", "Connection: te, close")},
		{"chunked request",
			post("Transfer-Encoding: chunked", "Content-Type: text/plain"), nil,
			head("POST /upload HTTP/1.1", "Host: example.com", "Content-Type: text/plain", "Transfer-Encoding: chunked")},
		{"websocket upgrade with close",
			get("Connection: Upgrade, close", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), nil,
			head("GET / HTTP/1.1", "Host: example.com", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
				"Connection: upgrade, close", "Upgrade: websocket")},
		{"HTTP/1.0 without Host",
			head("GET /x HTTP/1.0", "Accept: */*"), []Field{{[]byte("Host"), []byte("default.example")}},
			head("GET /x HTTP/1.1", "Accept: */*", "Connection: close", "Host: default.example")},
		{"OPTIONS absolute-form without path",
			head("OPTIONS http://a.example:8080 HTTP/1.1", "Host: a.example:8080"), nil,
			head("OPTIONS * HTTP/1.1", "Host: a.example:8080")},
		{"absolute-form with query only",
			head("GET http://a.example?x=1 HTTP/1.1", "Host: a.example"), nil,
			head("GET /?x=1 HTTP/1.1", "Host: a.example")},
		{"CONNECT",
			head("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"), nil,
			head("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443")},
	}
	var r Request
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ParseRequest(&r, []byte(tc.in), nil); err != nil {
				t.Fatal(err)
			}
			if got := string(AppendRequest(nil, &r, tc.extra...)); got != tc.want {
				t.Fatalf("AppendRequest\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	cases := []struct {
		name, method, in, want string
	}{
		{"HTTP/1.0 close-delimited", "GET",
			head("HTTP/1.0 200 OK", "Content-Type: text/plain", "Keep-Alive: timeout=5"),
			head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Connection: close")},
		{"204 loses CL", "GET",
			head("HTTP/1.1 204 No Content", "Content-Length: 5", "Date: x"),
			head("HTTP/1.1 204 No Content", "Date: x")},
		{"304 keeps CL", "GET",
			head("HTTP/1.1 304 Not Modified", "Content-Length: 5"),
			head("HTTP/1.1 304 Not Modified", "Content-Length: 5")},
		{"HEAD loses TE", "HEAD",
			head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
			head("HTTP/1.1 200 OK")},
		{"101 upgrade", "GET",
			head("HTTP/1.1 101 Switching Protocols", "Connection: upgrade", "Upgrade: websocket", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
			head("HTTP/1.1 101 Switching Protocols", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Connection: upgrade", "Upgrade: websocket")},
		{"CONNECT tunnel", "CONNECT",
			head("HTTP/1.1 200 Connection Established"),
			head("HTTP/1.1 200 Connection Established")},
		{"chunked with close and equal CLs", "GET",
			head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: close, X-Hop", "X-Hop: 1"),
			head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: close")},
		{"duplicate equal CL canonical", "GET",
			head("HTTP/1.1 200", "Content-Length: 3, 3", "Content-Length: 3"),
			head("HTTP/1.1 200 ", "Content-Length: 3")},
	}
	var r Response
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ParseResponse(&r, []byte(tc.in), []byte(tc.method), nil); err != nil {
				t.Fatal(err)
			}
			if got := string(AppendResponse(nil, &r)); got != tc.want {
				t.Fatalf("AppendResponse\n got %q\nwant %q", got, tc.want)
			}
			extra := Field{Name: []byte("Sozu-Id"), Value: []byte("01JEAAAAAAAAAAAAAAAAAAAAAA")}
			if got, want := ResponseLen(&r, extra), len(AppendResponse(nil, &r, extra)); got != want {
				t.Fatalf("ResponseLen %d, AppendResponse wrote %d", got, want)
			}
		})
	}
}

func TestAppendZeroAllocs(t *testing.T) {
	var req Request
	if err := ParseRequest(&req, []byte(browserRequest), nil); err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := ParseResponse(&resp, []byte(typicalResponse), []byte("GET"), nil); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() {
		dst = AppendRequest(dst[:0], &req, xff)
		dst = AppendResponse(dst[:0], &resp, xff)
	}); n != 0 {
		t.Fatalf("%v allocs per run, want 0", n)
	}
}

func TestIsHopByHop(t *testing.T) {
	for _, n := range []string{"Connection", "keep-alive", "PROXY-CONNECTION", "te", "Transfer-Encoding", "upgrade"} {
		if !IsHopByHop([]byte(n)) {
			t.Errorf("IsHopByHop(%q) = false", n)
		}
	}
	for _, n := range []string{"Trailer", "Host", "Content-Length", "tee", "Connections"} {
		if IsHopByHop([]byte(n)) {
			t.Errorf("IsHopByHop(%q) = true", n)
		}
	}
}
