package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/metrics"
)

// thinkingBackend answers /fast at once; it holds /slow, and /stall after
// the head and 3 of the 10 bytes of its body, for hold, then answers (the
// rest of) it, unless the proxy closes the connection first: it then
// sends the time on closed.
type thinkingBackend struct {
	*rawBackend
	got    chan string    // the request line of each request it reads
	closed chan time.Time // when the proxy closed a connection holding a request
}

func newThinkingBackend(t *testing.T, hold time.Duration) *thinkingBackend {
	b := &thinkingBackend{got: make(chan string, 16), closed: make(chan time.Time, 16)}
	b.rawBackend = newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			line, _, _ := strings.Cut(head, "\r\n")
			b.got <- line
			rest := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast"
			if !strings.Contains(line, " /fast ") {
				rest = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate"
				if strings.Contains(line, " /stall ") {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
					rest = "defghij"
				}
				c.SetReadDeadline(time.Now().Add(hold))
				if _, err := br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
					if err != nil {
						b.closed <- time.Now()
					}
					return // a byte: the proxy never sends a request before the response
				}
				c.SetReadDeadline(time.Time{})
			}
			if _, err := io.WriteString(c, rest); err != nil {
				return
			}
		}
	})
	return b
}

// has waits for the backend to have read a request.
func (b *thinkingBackend) has(t *testing.T) string {
	t.Helper()
	select {
	case line := <-b.got:
		return line
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never got the request")
		return ""
	}
}

// closedWithin waits at most d for the proxy to close the backend
// connection holding a request, and returns when it did.
func (b *thinkingBackend) closedWithin(t *testing.T, d time.Duration, why string) time.Time {
	t.Helper()
	select {
	case at := <-b.closed:
		return at
	case <-time.After(d):
		t.Fatalf("the backend connection is still open %v after %s", d, why)
		return time.Time{}
	}
}

// A client that goes away (FIN, or a reset) while its request waits for
// the backend's response head is noticed within about a second, not at
// the back timeout: the exchange is abandoned, the backend connection
// closed (not pooled), the session ends, and the request is recorded as
// an HTTP/2 stream the client cancelled is: no status, no 5xx in the
// metrics, a record whose reason says the client left. The same when it
// goes away while the backend is silent in the middle of the body.
func TestClientLeavingWhileTheBackendThinks(t *testing.T) {
	const backTimeout = 6 * time.Second
	for _, tc := range []struct {
		name, path string
		reset      bool // SO_LINGER 0: the close resets the connection
		half       bool // a half-close: the client could still read
		pipelined  bool // a second request first, then the close
		tls        bool
	}{
		{name: "FIN", path: "/slow"},
		{name: "half-close", path: "/slow", half: true},
		{name: "reset", path: "/slow", reset: true},
		{name: "FIN after a pipelined request", path: "/slow", pipelined: true},
		{name: "TLS close", path: "/slow", tls: true},
		{name: "FIN mid-body", path: "/stall"},
		{name: "reset mid-body", path: "/stall", reset: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newThinkingBackend(t, 10*time.Second)
			al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
			reg := metrics.New()
			f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
				l.BackTimeout = backTimeout
				if tc.tls {
					l.TLS = testTLSConfig(t, "a.test")
				}
			}, Options{Access: al, Metrics: reg})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var cc net.Conn = c
			if tc.tls {
				cc = tls.Client(c, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
			}
			if _, err := io.WriteString(cc, "GET "+tc.path+" HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			b.has(t)
			if tc.path == "/stall" {
				// The head and the first bytes of the body are here.
				cc.SetReadDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(cc)
				if _, err := readHeadFrom(br); err != nil {
					t.Fatal(err)
				}
				p := make([]byte, 3)
				if _, err := io.ReadFull(br, p); err != nil || string(p) != "abc" {
					t.Fatalf("the body's first bytes: %q (%v)", p, err)
				}
			}
			if tc.pipelined {
				// Bytes waiting are no hang-up, but a FIN after them is.
				io.WriteString(cc, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
			}
			if tc.reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			left := time.Now()
			if tc.half {
				c.(*net.TCPConn).CloseWrite()
			} else {
				cc.Close() // a TLS client sends its close_notify, then the FIN
			}
			at := b.closedWithin(t, backTimeout/2, "the client left")
			t.Logf("backend connection closed %v after the client left", at.Sub(left).Round(time.Millisecond))
			waitFor(t, "the session to end", func() bool { return f.srv.Sessions() == 0 })

			rec := sink.JSON(t, 1)[0]
			if st := get(rec, "http.response.status_code"); tc.path == "/slow" && st != nil || tc.path == "/stall" && st != float64(200) {
				t.Errorf("record's status %v: want none before the head, the head's after it", st)
			}
			if r, _ := get(rec, "event.reason").(string); !strings.Contains(r, "client") {
				t.Errorf("record's reason %q, want one saying the client left: %v", r, rec)
			}
			p := reg.Snapshot().GetProxy()
			for name, want := range map[string]int64{pm.Status5xx: 0, pm.AnswerError(502): 0, pm.AnswerError(504): 0} {
				if got := p[name].GetCount(); got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			if n := b.conns.Load(); n != 1 {
				t.Errorf("%d backend connections, want 1", n)
			}
		})
	}
}

// A client that stays gets its 504 at the back timeout, as before: the
// checks that it is still there do not end the wait sooner.
func TestClientStayingGets504AtBackTimeout(t *testing.T) {
	const backTimeout = 2 * time.Second
	b := newThinkingBackend(t, 10*time.Second)
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.BackTimeout = backTimeout })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, _ := io.ReadAll(c)
	d := time.Since(start)
	if !strings.HasPrefix(string(resp), "HTTP/1.1 504 ") {
		t.Fatalf("answer %q after %v, want a 504", resp, d)
	}
	// The back timeout is re-armed lazily (package deadline): it fires
	// between 7/8 and 8/8 of its length.
	if d < backTimeout*7/8 || d > backTimeout+time.Second {
		t.Fatalf("504 after %v, back timeout %v", d, backTimeout)
	}
}

// Bytes a client sends while its request waits for the backend (the next,
// pipelined request) are no hang-up, and are not lost: both requests are
// answered, in order.
func TestPipelinedRequestWhileTheBackendThinks(t *testing.T) {
	b := newThinkingBackend(t, 1500*time.Millisecond) // several checks of the client while /slow waits
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
	b.has(t)
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, want := range []string{"late", "fast"} {
		if _, err := readHeadFrom(br); err != nil {
			t.Fatalf("waiting for the %q response: %v", want, err)
		}
		p := make([]byte, 4)
		if _, err := io.ReadFull(br, p); err != nil || string(p) != want {
			t.Fatalf("body %q (%v), want %q", p, err, want)
		}
	}
	if line := b.has(t); !strings.Contains(line, "/fast") {
		t.Fatalf("second request %q", line)
	}
}
