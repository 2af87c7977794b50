package h2c

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// backend is a Go HTTP/2 server spoken to with prior knowledge on a real
// loopback socket, counting the connections it accepts.
type backend struct {
	ln       net.Listener
	accepted atomic.Int64
	srv      *http2.Server
	mu       sync.Mutex
	conns    []net.Conn
	servers  []*http.Server // one per connection, so that Shutdown sends GOAWAY on it
}

// goAway makes the backend send a graceful GOAWAY on every connection it
// has accepted so far (new connections are served normally).
func (b *backend) goAway() {
	b.mu.Lock()
	hs := b.servers
	b.servers = nil
	b.mu.Unlock()
	for _, s := range hs {
		s.Shutdown(context.Background())
	}
}

func newBackend(t *testing.T, h http.Handler, srv *http2.Server) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if srv == nil {
		srv = &http2.Server{}
	}
	b := &backend{ln: ln, srv: srv}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			hs := &http.Server{Handler: h}
			h2s := &http2.Server{MaxConcurrentStreams: srv.MaxConcurrentStreams}
			http2.ConfigureServer(hs, h2s)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.servers = append(b.servers, hs)
			b.mu.Unlock()
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: h, BaseConfig: hs})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	})
	return b
}

// poolTo returns a pool of connections to ln's address, dialed plainly.
func poolTo(ln net.Listener, opt Options) *Pool {
	addr := ln.Addr().String()
	var d net.Dialer
	return NewPool(addr, func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, opt)
}

func (b *backend) pool(opt Options) *Pool {
	return poolTo(b.ln, opt)
}

// exchange sends one HTTP/1.1 request on a new stream of p and returns
// the HTTP/1.1 response bytes.
func exchange(p *Pool, req string) (string, error) {
	st, _, err := p.Open(context.Background(), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write([]byte(req)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(st)
	return string(b), err
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if v := r.Trailer.Get("X-T"); v != "" {
		w.Header().Set("X-Got-Trailer", v)
	}
	sum := sha256.Sum256(body)
	w.Header().Set("X-Sum", fmt.Sprintf("%x", sum))
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Proto", r.Proto)
	if r.URL.Query().Get("trailer") != "" {
		w.Header().Set("Trailer", "X-Trail")
		w.(http.Flusher).Flush()
		w.Write(body)
		w.Header().Set("X-Trail", "done")
		return
	}
	if r.URL.Query().Get("cl") != "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	} else if len(body) > 0 {
		w.(http.Flusher).Flush() // no content-length: the body is streamed
	}
	w.Write(body)
}

func TestStreamExchange(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(echo), nil)
	p := b.pool(Options{})
	defer p.Close()
	body := strings.Repeat("0123456789", 100_000) // 1 MB: several windows each way
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(body)))
	chunked := "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
	tests := []struct {
		name, req string
		want      []string
	}{
		{"get", "GET /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\n", "X-Host: example.com", "X-Proto: HTTP/2.0", "Content-Length: 0\r\n"}},
		{"head", "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"X-Method: HEAD"}},
		{"post length", "POST /?cl=1 HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
			[]string{"X-Sum: " + sum, "Content-Length: 1000000\r\n"}},
		{"post chunked, response chunked", "POST / HTTP/1.1\r\nHost: h\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
			[]string{"Transfer-Encoding: chunked\r\n", "X-Got-Trailer: 1\r\n", "\r\n5\r\nhello\r\n0\r\n\r\n"}},
		{"response trailers", "POST /?trailer=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
			[]string{"\r\n3\r\nabc\r\n0\r\nx-trail: done\r\n\r\n"}},
		{"connection fields dropped", "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 1\r\n\r\n",
			[]string{"200 OK"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exchange(p, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			canon := canonicalHead(got)
			for _, w := range tc.want {
				if !strings.Contains(canon, w) {
					t.Errorf("response lacks %q:\n%.600s", w, canon)
				}
			}
		})
	}
}

// canonicalHead rewrites field names of a response head in canonical
// case, so expectations read like HTTP/1.1.
func canonicalHead(s string) string {
	head, body, _ := strings.Cut(s, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i := 1; i < len(lines); i++ {
		name, v, _ := strings.Cut(lines[i], ": ")
		lines[i] = http.CanonicalHeaderKey(name) + ": " + v
	}
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + body
}

// TestPoolMultiplexes: 200 concurrent exchanges share at most MaxConns
// connections.
func TestPoolMultiplexes(t *testing.T) {
	release := make(chan struct{})
	var inHandler atomic.Int64
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler.Add(1)
		<-release
		echo(w, r)
	}), &http2.Server{MaxConcurrentStreams: 60})
	p := b.pool(Options{MaxConns: 4})
	defer p.Close()
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			body := strings.Repeat(strconv.Itoa(i), 1000+i)
			got, err := exchange(p, fmt.Sprintf("POST /?cl=1 HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			if err == nil && !strings.HasSuffix(got, body) {
				err = fmt.Errorf("request %d: body not echoed", i)
			}
			errs <- err
		}()
	}
	// 4 connections × 60 streams hold all 200 at once.
	waitFor(t, func() bool { return inHandler.Load() == n })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if a := b.accepted.Load(); a > 4 {
		t.Errorf("backend accepted %d connections, want at most 4", a)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStalledStream: a stream whose reader stops holds at most its
// window, and other streams on the same connection go on.
func TestStalledStream(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4<<20)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		w.(http.Flusher).Flush()
		io.WriteString(w, "small")
	}), nil)
	p := b.pool(Options{MaxConns: 1, StreamWindow: 64 << 10})
	defer p.Close()
	st, _, err := p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write([]byte("GET /big HTTP/1.1\r\nHost: h\r\n\r\n"))
	br := bufio.NewReader(st)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// The reader stops; the backend fills the window and no more.
	in := st.cur.Load()
	waitFor(t, func() bool {
		in.c.mu.Lock()
		defer in.c.mu.Unlock()
		return in.recvWin == 0
	})
	in.c.mu.Lock()
	held := len(in.rbuf) - in.roff + len(in.chunk)
	in.c.mu.Unlock()
	if held > 64<<10+512 {
		t.Errorf("stalled stream holds %d bytes, more than its 64 KiB window", held)
	}
	for i := range 20 {
		got, err := exchange(p, "GET /small HTTP/1.1\r\nHost: h\r\n\r\n")
		if err != nil || !strings.HasSuffix(got, "small\r\n0\r\n\r\n") {
			t.Fatalf("exchange %d beside a stalled stream: %v %q", i, err, got)
		}
	}
	if b.accepted.Load() != 1 {
		t.Errorf("accepted %d connections, want 1", b.accepted.Load())
	}
	// The stalled stream still reads to the end once its reader resumes.
	rest, err := io.ReadAll(br)
	if err != nil || !bytes.Contains(rest, big[:1000]) {
		t.Fatalf("stalled stream after resuming: %v, %d bytes", err, len(rest))
	}
}

// TestStreamReset: a backend RST_STREAM fails that stream only.
func TestStreamReset(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			panic(http.ErrAbortHandler) // RST_STREAM(INTERNAL_ERROR)
		}
		io.WriteString(w, "fine")
	}), nil)
	p := b.pool(Options{MaxConns: 1})
	defer p.Close()
	_, err := exchange(p, "GET /reset HTTP/1.1\r\nHost: h\r\n\r\n")
	var re *ResetError
	if !errors.As(err, &re) || !re.Remote {
		t.Fatalf("reset stream: err %v, want a remote *ResetError", err)
	}
	got, err := exchange(p, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
	if err != nil || !strings.Contains(got, "fine") {
		t.Fatalf("next stream: %v %q", err, got)
	}
	if b.accepted.Load() != 1 {
		t.Errorf("accepted %d connections, want 1", b.accepted.Load())
	}
}

// TestReadDeadline: a backend that does not answer yields a timeout.
func TestReadDeadline(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }), nil)
	p := b.pool(Options{})
	defer p.Close()
	st, _, err := p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var buf [10]byte
	if _, err := st.Read(buf[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
}

// TestGoAwayMidLoad: graceful GOAWAYs from the backend during a load make
// no exchange fail: streams it processed finish, the others are sent again
// on a new connection.
func TestGoAwayMidLoad(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(echo), nil)
	p := b.pool(Options{MaxConns: 2})
	defer p.Close()
	var done atomic.Int64
	const workers, each = 16, 40
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := strings.Repeat(fmt.Sprintf("%d-%d.", w, i), 50)
				got, err := exchange(p, fmt.Sprintf("POST /?cl=1 HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				if err == nil && !strings.HasSuffix(got, "\r\n\r\n"+body) {
					err = fmt.Errorf("worker %d request %d: body not echoed: %.200q", w, i, got)
				}
				if err != nil {
					errs <- err
				}
				done.Add(1)
			}
		}()
	}
	for _, at := range []int64{100, 300, 500} {
		waitFor(t, func() bool { return done.Load() >= at })
		b.goAway()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if a := b.accepted.Load(); a < 2 {
		t.Errorf("backend accepted %d connections: the GOAWAYs should have made new ones", a)
	}
}

// TestDeadBackendDropped: a backend that completes the handshake and then
// answers nothing (a black hole) is detected when a stream times out: the
// PING goes unanswered, the connection is closed, and the next request
// gets a new one.
func TestDeadBackendDropped(t *testing.T) {
	ln, accepted := acceptEach(t, func(c net.Conn, _ int64) {
		fr := http2.NewFramer(c, c)
		fr.WriteSettings()
		io.Copy(io.Discard, c) // reads everything, answers nothing
	})
	p := poolTo(ln, Options{PingTimeout: 100 * time.Millisecond})
	defer p.Close()
	st, _, err := p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var buf [10]byte
	if _, err := st.Read(buf[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	st.Close()
	waitFor(t, func() bool { return p.Conns() == 0 })
	st, _, err = p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if n := accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2 (the dead one replaced)", n)
	}
}

// TestConnLostFailsInFlight: a backend connection that breaks fails the
// requests in flight on it (ErrConnLost), and the next request gets a new
// connection.
func TestConnLostFailsInFlight(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	var in atomic.Int64
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			in.Add(1)
			<-hang
			return
		}
		io.WriteString(w, "ok")
	}), nil)
	p := b.pool(Options{MaxConns: 1})
	defer p.Close()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := exchange(p, "GET /hang HTTP/1.1\r\nHost: h\r\n\r\n")
			errs <- err
		}()
	}
	waitFor(t, func() bool { return in.Load() == 3 })
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrConnLost) {
			t.Errorf("in-flight request on a broken connection: %v, want ErrConnLost", err)
		}
	}
	got, err := exchange(p, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
	if err != nil || !strings.HasSuffix(got, "ok") {
		t.Fatalf("after the break: %v %q", err, got)
	}
	if n := b.accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
}

// TestStreamIDsExhausted: streams reserved on a connection whose stream
// ids run out (the last one is 2^31-1, RFC 9113 §5.1.1) never go out with
// an invalid id, which would fail the connection and every stream on it:
// the connection takes the last one, and the others are sent on a new
// connection.
func TestStreamIDsExhausted(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(echo), nil)
	p := b.pool(Options{})
	defer p.Close()
	if _, err := exchange(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	c := p.conns[0]
	p.mu.Unlock()
	c.mu.Lock()
	c.nextID = 1<<31 - 3 // two ids left
	c.mu.Unlock()
	var sts []*Stream
	for range 4 { // all reserved on c before any sends its HEADERS
		st, _, err := p.Open(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.SetDeadline(time.Now().Add(10 * time.Second))
		sts = append(sts, st)
	}
	for i, st := range sts {
		if _, err := st.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	for i, st := range sts {
		got, err := io.ReadAll(st)
		if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200") {
			t.Errorf("stream %d: %q, %v", i, got, err)
		}
	}
}

// acceptEach listens on loopback and serves each connection with serve,
// given the connection's number (from 1), in a goroutine of its own that
// closes it after; it returns the listener and the count of connections
// accepted.
func acceptEach(t *testing.T, serve func(c net.Conn, n int64)) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c, n)
			}()
		}
	}()
	return ln, accepted
}

// refusingBackend accepts HTTP/2 connections with prior knowledge: the
// first refuse of them answer the first HEADERS they get with GOAWAY
// (last-stream-id 0: nothing processed) and close once the client has;
// the later ones answer every stream 200 "ok".
func refusingBackend(t *testing.T, refuse int64) (net.Listener, *atomic.Int64) {
	return acceptEach(t, func(c net.Conn, n int64) {
		var preface [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c, preface[:]); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.WriteSettings()
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				if n <= refuse {
					fr.WriteGoAway(0, http2.ErrCodeNo, nil)
					io.Copy(io.Discard, c)
					return
				}
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: block.Bytes(), EndHeaders: true})
				fr.WriteData(f.StreamID, true, []byte("ok"))
			}
		}
	})
}

// TestReplayAcrossEveryConnection: a request refused unprocessed (GOAWAY
// below its stream) by as many connections in turn as the pool holds, as
// when a backend restarting says GOAWAY on all of them at once, is sent
// again until a connection takes it (RFC 9113 §8.7: safe to retry, a
// POST included); a backend refusing without end gets MaxConns + 1
// replays, then the request fails as unanswered (io.EOF before any byte).
func TestReplayAcrossEveryConnection(t *testing.T) {
	const maxConns = 4
	req := "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
	t.Run("every connection goes away", func(t *testing.T) {
		ln, accepted := refusingBackend(t, maxConns)
		p := poolTo(ln, Options{MaxConns: maxConns})
		defer p.Close()
		got, err := exchange(p, req)
		if err != nil || !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, "\r\nok\r\n") {
			t.Fatalf("got %q, %v; want the answer of connection %d", got, err, maxConns+1)
		}
		if a := accepted.Load(); a != maxConns+1 {
			t.Errorf("%d connections, want %d", a, maxConns+1)
		}
	})
	t.Run("refusals without end", func(t *testing.T) {
		ln, accepted := refusingBackend(t, 1<<40)
		p := poolTo(ln, Options{MaxConns: maxConns})
		defer p.Close()
		got, err := exchange(p, req)
		if got != "" || err != nil {
			t.Fatalf("got %q, %v; want nothing (io.EOF)", got, err)
		}
		if a := accepted.Load(); a != maxConns+2 {
			t.Errorf("%d connections, want %d (the first, and MaxConns + 1 replays)", a, maxConns+2)
		}
	})
}
