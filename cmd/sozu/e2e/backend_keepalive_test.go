package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// startKeepAliveProxy runs one worker (so that one client connection meets
// one backend pool) with one HTTP listener routing every host to origin.
func startKeepAliveProxy(t *testing.T, origin string) string {
	t.Helper()
	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	startProxy(t, dir, sock, simpleHTTPConfig(sock, front, origin, 1), front)
	return front
}

// TestBackendIdleCloseCostsNoRequest: a backend that closes idle keep-alive
// connections after its own timeout (Node.js does after 5 s) never costs a
// request. Each round sends a GET, waits until the backend has closed the
// idle connection the proxy pooled, then POSTs a body: 200 every time, and
// the backend never sees a truncated body.
func TestBackendIdleCloseCostsNoRequest(t *testing.T) {
	var closed, truncated, posts atomic.Int64
	closedCh := make(chan struct{}, 64)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		IdleTimeout: 200 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			if r.Method == http.MethodPost {
				posts.Add(1)
				if err != nil || n != r.ContentLength {
					truncated.Add(1)
				}
			}
			fmt.Fprintf(w, "%s %d", r.Method, n)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed.Add(1)
				closedCh <- struct{}{}
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	front := startKeepAliveProxy(t, ln.Addr().String())

	client := &http.Client{Timeout: 10 * time.Second}
	body := strings.Repeat("p", 3000)
	for round := range 20 {
		resp, err := client.Get("http://" + front + "/get")
		if err != nil {
			t.Fatalf("round %d: GET: %v", round, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("round %d: GET answered %d", round, resp.StatusCode)
		}
		// The backend closes the connection the proxy pooled.
		select {
		case <-closedCh:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the backend never closed its idle connection", round)
		}
		resp, err = client.Post("http://"+front+"/post", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatalf("round %d: POST: %v", round, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "POST 3000" {
			t.Fatalf("round %d: POST after the backend's idle close: %d %q", round, resp.StatusCode, got)
		}
		// Let the POST's connection close too before the next round, so
		// that every round starts from the same pool.
		select {
		case <-closedCh:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the backend never closed the POST's connection", round)
		}
	}
	if posts.Load() != 20 || truncated.Load() != 0 {
		t.Fatalf("backend saw %d POSTs, %d truncated", posts.Load(), truncated.Load())
	}
}

// TestReusedConnectionClosedUnansweredIsReplayed: a backend that reads a
// request on a reused connection and closes it without a byte of answer
// (the race of an idle close with the request) gets the request again on
// a new connection when the proxy still holds all of it; a body already
// streaming cannot be sent again, and the client gets 502.
func TestReusedConnectionClosedUnansweredIsReplayed(t *testing.T) {
	var requests atomic.Int64
	origin := startRawOrigin(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			requests.Add(1)
			if n == 1 {
				return // the second request on a connection: closed, unanswered
			}
			body := req.Method + " " + strconv.FormatInt(req.ContentLength, 10)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	front := startKeepAliveProxy(t, origin.addr)
	// Each pair of requests goes over one client connection: its session
	// gives the backend connection back to the pool before it reads the
	// next request, where a new client connection could reach the pool
	// first and take a new backend connection.
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		return conn, bufio.NewReader(conn)
	}
	exchange := func(conn net.Conn, br *bufio.Reader, method string, body string) (int, string) {
		t.Helper()
		fmt.Fprintf(conn, "%s / HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n%s", method, len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(got)
	}
	c, br := dial()
	if code, got := exchange(c, br, "GET", ""); code != 200 || got != "GET 0" {
		t.Fatalf("first GET: %d %q", code, got)
	}
	// The pooled connection takes a POST and closes unanswered: the
	// backend may have processed it, and a POST is not idempotent (RFC
	// 9112 §9.3.1.1: a proxy must not retry it): 502, sent once.
	if code, _ := exchange(c, br, "POST", "hello"); code != 502 {
		t.Fatalf("POST on a connection closed unanswered: %d, want 502 (no replay)", code)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("backend read %d requests, want 2 (GET, POST once)", n)
	}
	// A PUT is idempotent: replayed on a new connection.
	c, br = dial()
	if code, got := exchange(c, br, "PUT", "hello"); code != 200 || got != "PUT 5" {
		t.Fatalf("PUT on a new connection: %d %q", code, got)
	}
	if code, got := exchange(c, br, "PUT", "hello"); code != 200 || got != "PUT 5" {
		t.Fatalf("PUT on a connection closed unanswered: %d %q, want a replay", code, got)
	}
	if n := requests.Load(); n != 5 {
		t.Fatalf("backend read %d requests, want 5 (GET, POST, PUT, PUT dropped, PUT replayed)", n)
	}
}
