package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestShutdownAnswersLastKeepAliveRequest: a keep-alive client whose
// connection is idle when a soft stop (or a worker upgrade) begins may
// already be sending its next request; that request is answered, with
// Connection: close, instead of the connection being closed under it (a
// reset the client would count as an error), and the connection closes
// after the answer.
func TestShutdownAnswersLastKeepAliveRequest(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := func() *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: c\r\n\r\n"); err != nil {
			t.Fatalf("sending a request: %v", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("answer %d %q", resp.StatusCode, body)
		}
		return resp
	}
	if get().Close {
		t.Fatal("the first answer closed the connection")
	}
	waitFor(t, "the session to be idle", func() bool { return f.srv.Sessions() == 1 })
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(context.Background()) }()
	waitFor(t, "the server to drain", func() bool { return f.srv.draining.Load() })
	if !get().Close {
		t.Fatal("the last answer of a draining server kept the connection open")
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the last answer: %d bytes, %v; want EOF", n, err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}
