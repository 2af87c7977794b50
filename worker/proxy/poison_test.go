package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/http1"
)

// TestNoResponseQueuePoisoning: bytes a faulty backend sends after a
// complete response (a HEAD answered with a body in a write of its own, a
// body longer than its Content-Length past a spliced copy) never reach the
// next client of that pooled connection as its response (RFC 9112 §9.3.2:
// responses answer requests in order; PortSwigger's response queue
// poisoning): every reuse is checked first.
func TestNoResponseQueuePoisoning(t *testing.T) {
	const stray = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"
	big := strings.Repeat("b", 100000)
	written := make(chan struct{}, 4)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			method, rest, _ := strings.Cut(head, " ")
			path, _, _ := strings.Cut(rest, " ")
			switch path {
			case "/head-with-body":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
				io.WriteString(c, stray) // a write of its own: after the response was read
			case "/longer-than-announced":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+big+stray)
			default:
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(method+path), method+path)
				continue
			}
			written <- struct{}{}
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	for _, tc := range []struct{ method, path string }{
		{"HEAD", "/head-with-body"},
		{"GET", "/longer-than-announced"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// One client, its own connection: the faulty exchange.
			req, _ := http.NewRequest(tc.method, "http://"+f.addr+tc.path, nil)
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			select {
			case <-written:
			case <-time.After(5 * time.Second):
				t.Fatal("the backend never answered")
			}
			// The stray bytes are in the proxy's socket now (loopback):
			// the next clients must each get their own response.
			for i := range 3 {
				path := fmt.Sprintf("/client-%d", i)
				resp, err := client().Get("http://" + f.addr + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "GET"+path {
					t.Fatalf("client %d got %q, want %q: another exchange's bytes", i, body, "GET"+path)
				}
			}
		})
	}
}

// TestNoRequestSmuggledInAnIgnoredBody: a backend may answer a GET, HEAD,
// DELETE, OPTIONS or TRACE without reading the content it carries (RFC
// 9110 gives it no meaning, or forbids it); the content then stays in the backend's
// buffer and is read as the next request on that connection ("CL.0"
// desync). Here the backend reads heads only, so a body is a request to
// it, and it answers that smuggled request only once the next one on the
// connection has come (a slow endpoint, at worst): the next client given
// that pooled connection would get the smuggled response. The proxy
// closes the connection after such a request instead of pooling it.
func TestNoRequestSmuggledInAnIgnoredBody(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			method, path := requestLine(head)
			if path != "/smuggled" {
				echo(c, method, path)
				continue
			}
			next, err := readHeadFrom(br) // the slow endpoint answers once the next request is here
			if err != nil {
				return // the proxy closed the connection: nobody gets the smuggled answer
			}
			echo(c, method, path)
			echoHead(c, next)
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: c\r\n\r\n"
	for _, tc := range []struct{ method, framing, body string }{
		{"GET", fmt.Sprintf("Content-Length: %d", len(smuggled)), smuggled},
		{"HEAD", fmt.Sprintf("Content-Length: %d", len(smuggled)), smuggled},
		{"DELETE", fmt.Sprintf("Content-Length: %d", len(smuggled)), smuggled},
		{"TRACE", fmt.Sprintf("Content-Length: %d", len(smuggled)), smuggled},
		// OPTIONS content has no defined use either (RFC 9110 §9.3.7): a
		// CORS preflight handler answers without reading a body.
		{"OPTIONS", fmt.Sprintf("Content-Length: %d", len(smuggled)), smuggled},
		// A final answer to Expect: 100-continue, with no 100 first: the
		// backend did not ask for the content the client sent at once.
		{"POST", fmt.Sprintf("Expect: 100-continue\r\nContent-Length: %d", len(smuggled)), smuggled},
	} {
		t.Run(tc.method+" "+tc.framing, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s /a HTTP/1.1\r\nHost: c\r\n%s\r\n\r\n%s", tc.method, tc.framing, tc.body)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: tc.method})
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			victims(t, func(path string) (*http.Response, error) { return client().Get("http://" + f.addr + path) })
		})
	}
	// The same over HTTP/2: the bridge writes the stream's DATA as the
	// body of an HTTP/1.1 request.
	t.Run("HTTP/2 GET", func(t *testing.T) {
		h2f := h2OnlyFixture(t, b.addr)
		c := h2Client("a.test")
		req, _ := http.NewRequest("GET", "https://"+h2f.addr+"/a", strings.NewReader(smuggled))
		req.Host = "a.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		victims(t, h2Get(c, h2f.addr))
	})
}

// TestBodylessRequestsKeepTheBackendConnection: the rule above costs
// nothing to requests without content, nor to methods whose content has
// a meaning: their backend connection is pooled and reused.
func TestBodylessRequestsKeepTheBackendConnection(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			if strings.Contains(strings.ToLower(head), "expect: 100-continue\r\n") {
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
			if strings.Contains(strings.ToLower(head), "content-length: 2\r\n") {
				io.CopyN(io.Discard, br, 2)
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	cl := client()
	for _, r := range []struct{ method, body string }{{"GET", ""}, {"POST", "xy"}, {"GET", ""}, {"PUT", "xy"}, {"DELETE", ""}} {
		req, _ := http.NewRequest(r.method, "http://"+f.addr+"/", strings.NewReader(r.body))
		if r.body == "" {
			req.Body = nil
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A session gives its backend connection back after its client read
	// the answer: a request on another session waits for it.
	pooled := func(what string) {
		waitFor(t, what+"'s connection back in the pool", func() bool {
			return f.srv.Config().Clusters["c"].Backends.Backends()[0].Idle() == 1
		})
	}
	pooled("the last exchange")
	// An Expect request whose backend asked for the content (100 first).
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: c\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxy")
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 100 {
			break
		}
	}
	pooled("the Expect exchange")
	if _, err := cl.Get("http://" + f.addr + "/"); err != nil {
		t.Fatal(err)
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("the backend saw %d connections, want 1: a pooled connection was not reused", n)
	}
}

// TestBodyIgnorable: which requests close their backend connection
// (TestNoRequestSmuggledInAnIgnoredBody): content in either framing on the
// five methods, nothing else.
func TestBodyIgnorable(t *testing.T) {
	for _, tc := range []struct {
		method string
		body   http1.BodyKind
		length int64
		want   bool
	}{
		{"GET", http1.BodyLength, 5, true},
		{"GET", http1.BodyChunked, -1, true},
		{"HEAD", http1.BodyChunked, -1, true},
		{"DELETE", http1.BodyLength, 1, true},
		{"TRACE", http1.BodyLength, 1, true},
		{"GET", http1.BodyNone, -1, false},
		{"GET", http1.BodyLength, 0, false},
		{"POST", http1.BodyLength, 5, false},
		{"PUT", http1.BodyChunked, -1, false},
		{"OPTIONS", http1.BodyLength, 5, true},
		{"OPTIONS", http1.BodyChunked, -1, true},
		{"OPTIONS", http1.BodyNone, -1, false},
		{"PATCH", http1.BodyLength, 5, false},
		{"get", http1.BodyLength, 5, false}, // methods are case-sensitive (RFC 9110 §9.1)
	} {
		req := &http1.Request{Method: []byte(tc.method), Body: tc.body, ContentLength: tc.length}
		if got := bodyIgnorable(req); got != tc.want {
			t.Errorf("%s with body %v (%d): bodyIgnorable = %v, want %v", tc.method, tc.body, tc.length, got, tc.want)
		}
	}
}

// TestNoRequestSmuggledAfterAnEarlyResponse: a backend that answers a
// request before it has all of its body did not wait for that body, and
// may never read it as one (a POST to a static file or a redirect, the
// "CL.0" endpoints; a server that timed out waiting for the body, the
// "pause-based" desync): the rest of the body is then read as the next
// request on that connection. Here the client sends the head, waits for
// the response to begin, then sends its body, a request; the backend ends
// its response once it has read that request, which answers a slow
// endpoint, once the next request on the connection has come. The proxy
// must not pool a connection whose response began before the request
// body was all sent: the next client would get the smuggled response.
func TestNoRequestSmuggledAfterAnEarlyResponse(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			method, path := requestLine(head)
			switch path {
			case "/early":
				// Answered at once, the body unread: its first half now,
				// the rest once the next request (the body) is read.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
				next, err := readHeadFrom(br)
				if err != nil {
					return
				}
				io.WriteString(c, "56789")
				following, err := readHeadFrom(br) // a slow endpoint
				if err != nil {
					return // the proxy closed the connection: nobody gets the smuggled answer
				}
				echoHead(c, next)
				echoHead(c, following)
			default:
				echo(c, method, path)
			}
		}
	})
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: c\r\n\r\n"
	t.Run("HTTP/1.1", func(t *testing.T) {
		f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "POST /early HTTP/1.1\r\nHost: c\r\nContent-Length: %d\r\n\r\n", len(smuggled))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
		if err != nil {
			t.Fatal(err)
		}
		// The response has begun: now the body.
		io.WriteString(c, smuggled)
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "0123456789" {
			t.Fatalf("early response: %q, %v", body, err)
		}
		victims(t, func(path string) (*http.Response, error) { return client().Get("http://" + f.addr + path) })
	})
	// The same over HTTP/2: the stream's DATA is the body the bridge
	// streams to the backend.
	t.Run("HTTP/2", func(t *testing.T) {
		f := h2OnlyFixture(t, b.addr)
		c := h2Client("a.test")
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", "https://"+f.addr+"/early", pr)
		req.Host, req.ContentLength = "a.test", int64(len(smuggled))
		resp, err := c.Do(req) // the response head, before any DATA
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(pw, smuggled)
		pw.Close()
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "0123456789" {
			t.Fatalf("early response: %q, %v", body, err)
		}
		victims(t, h2Get(c, f.addr))
	})
}

// requestLine returns the method and target of a request head.
func requestLine(head string) (method, target string) {
	method, rest, _ := strings.Cut(head, " ")
	target, _, _ = strings.Cut(rest, " ")
	return method, target
}

// echo answers a request with its method and target as the body (a
// HEAD's answer announces that length and sends nothing).
func echo(c net.Conn, method, target string) {
	if method == "HEAD" {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(method+target))
		return
	}
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(method+target), method+target)
}

// echoHead is echo for the request whose head is head.
func echoHead(c net.Conn, head string) {
	method, target := requestLine(head)
	echo(c, method, target)
}

// victims checks that two more clients, each asking get for a path of
// its own, get their own responses (echo's), not a smuggled request's.
func victims(t *testing.T, get func(path string) (*http.Response, error)) {
	t.Helper()
	for i := range 2 {
		path := fmt.Sprintf("/victim-%d", i)
		resp, err := get(path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "GET"+path {
			t.Fatalf("victim %d got %q, want %q: the smuggled request's response", i, body, "GET"+path)
		}
	}
}

// h2Get is get for victims over HTTP/2, Host a.test.
func h2Get(c *http.Client, addr string) func(path string) (*http.Response, error) {
	return func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Host = "a.test"
		return c.Do(req)
	}
}
