package h2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// testServer serves h2 (TLS with ALPN or cleartext prior knowledge) on a
// loopback listener and records every Conn and the error Serve returned.
type testServer struct {
	t     *testing.T
	ln    net.Listener
	addr  string
	stats Stats
	tls   *tls.Config
	wg    sync.WaitGroup

	mu    sync.Mutex
	conns []*Conn
	errs  chan error
	newc  chan *Conn
}

func startServer(t *testing.T, lim Limits, h Handler, tlsCfg *tls.Config, opt *Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, ln: ln, addr: ln.Addr().String(), tls: tlsCfg,
		errs: make(chan error, 1024), newc: make(chan *Conn, 1024)}
	if opt == nil {
		opt = &Options{}
	}
	opt.Stats = &ts.stats
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				if tlsCfg != nil {
					tc := tls.Server(nc, tlsCfg)
					if err := tc.Handshake(); err != nil {
						nc.Close()
						return
					}
					if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
						ts.errs <- errors.New("ALPN negotiated " + p)
						tc.Close()
						return
					}
					nc = tc
				} else {
					nc = newPeekConn(t, nc.(*net.TCPConn))
				}
				c := NewConn(nc, lim, h, opt)
				ts.mu.Lock()
				ts.conns = append(ts.conns, c)
				ts.mu.Unlock()
				ts.newc <- c
				ts.errs <- c.Serve()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ts.mu.Lock()
		for _, c := range ts.conns {
			c.mu.Lock()
			c.stopReadingLocked()
			c.mu.Unlock()
		}
		ts.mu.Unlock()
		ts.wg.Wait()
	})
	return ts
}

// serveErr waits for the next Serve result.
func (ts *testServer) serveErr() error {
	ts.t.Helper()
	select {
	case err := <-ts.errs:
		return err
	case <-time.After(10 * time.Second):
		ts.t.Fatal("timed out waiting for Serve to return")
		return nil
	}
}

func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// rawClient speaks frames directly to a test server.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
	wmu sync.Mutex
}

// dialRaw connects, sends the preface and settings, and consumes the
// server's SETTINGS (acknowledging it).
func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	rc.fr.SetMaxReadFrameSize(1 << 24)
	rc.fr.AllowIllegalWrites = true
	rc.enc = hpack.NewEncoder(&rc.buf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := rc.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("first server frame %v, want SETTINGS", f)
	}
	rc.fr.WriteSettingsAck()
	return rc
}

func (rc *rawClient) headerBlock(fields ...string) []byte {
	rc.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), rc.buf.Bytes()...)
}

var getReq = []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "localhost"}

func (rc *rawClient) get(id uint32, end bool) {
	rc.t.Helper()
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.headerBlock(getReq...), EndStream: end, EndHeaders: true})
	if err != nil {
		rc.t.Error(err) // may run on a driver goroutine: no Fatal
	}
}

// waitFor reads frames until pred accepts one; it fails the test on EOF or
// timeout. Frames are copied out of the framer's buffers only by pred.
func (rc *rawClient) waitFor(what string, pred func(http2.Frame) bool) {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if pred(f) {
			return
		}
	}
}

// expectGoAway reads until GOAWAY and checks its code.
func (rc *rawClient) expectGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	rc.t.Helper()
	var ga *http2.GoAwayFrame
	rc.waitFor("GOAWAY", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		if ok {
			ga = &http2.GoAwayFrame{LastStreamID: g.LastStreamID, ErrCode: g.ErrCode}
		}
		return ok
	})
	if ga.ErrCode != code {
		rc.t.Fatalf("GOAWAY code %v, want %v", ga.ErrCode, code)
	}
	return ga
}

// expectDrain reads our graceful shutdown's two steps (RFC 9113 §6.8): the
// advisory GOAWAY(NO_ERROR, 2^31-1) and its PING, which it answers after
// calling between (when not nil: what the client sends while the advisory
// GOAWAY is on its way); then it returns the final GOAWAY(NO_ERROR).
func (rc *rawClient) expectDrain(between func()) *http2.GoAwayFrame {
	rc.t.Helper()
	if ga := rc.expectGoAway(http2.ErrCodeNo); ga.LastStreamID != maxStreamID {
		rc.t.Fatalf("first GOAWAY last stream %d, want 2^31-1 (advisory)", ga.LastStreamID)
	}
	var data [8]byte
	rc.waitFor("the drain PING", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			rc.t.Fatalf("final GOAWAY (last %d) before the PING's ACK", f.LastStreamID)
		case *http2.PingFrame:
			if !f.IsAck() {
				data = f.Data
				return true
			}
		}
		return false
	})
	if between != nil {
		between()
	}
	rc.wmu.Lock()
	rc.fr.WritePing(true, data)
	rc.wmu.Unlock()
	return rc.expectGoAway(http2.ErrCodeNo)
}

func (rc *rawClient) expectRST(id uint32, code http2.ErrCode) {
	rc.t.Helper()
	rc.waitFor("RST_STREAM", func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			rc.t.Fatalf("got GOAWAY %v while waiting for RST_STREAM", g.ErrCode)
		}
		r, ok := f.(*http2.RSTStreamFrame)
		if ok && r.StreamID == id {
			if r.ErrCode != code {
				rc.t.Fatalf("RST_STREAM(%d) code %v, want %v", id, r.ErrCode, code)
			}
			return true
		}
		return false
	})
}

// blockHandler never responds until the stream is reset or the conn dies.
var blockHandler = HandlerFunc(func(s *Stream) { <-s.Done() })

// helloHandler reads the whole body and answers "hello" plus the body size.
var helloHandler = HandlerFunc(func(s *Stream) {
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		return
	}
	s.WriteHeader(200, []HeaderField{{Name: []byte("Content-Type"), Value: []byte("text/plain")}})
	s.Write([]byte("hello "))
	s.Write([]byte(big.NewInt(n).String()))
	s.Close()
})

// fixedClock keeps flood windows from rolling over during a test.
func fixedClock() func() time.Time {
	t0 := time.Unix(1_700_000_000, 0)
	return func() time.Time { return t0 }
}

// peekConn is a cleartext TCP connection that waits for its next bytes
// without a buffer (IdleWaiter): it parks in the poller until a recv with
// MSG_PEEK finds something (a byte, the end, an error). startServer serves
// cleartext connections through it, so that the suite runs the reader's
// idle path (the read buffer given back between reads) as the proxy's TLS
// connections do; its TLS connections, no IdleWaiter, run the other.
type peekConn struct {
	*net.TCPConn
	rc syscall.RawConn
	fn func(fd uintptr) bool
}

func newPeekConn(t *testing.T, tc *net.TCPConn) *peekConn {
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Error(err)
	}
	c := &peekConn{TCPConn: tc, rc: rc}
	c.fn = func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
			if err == syscall.EINTR {
				continue
			}
			return err != syscall.EAGAIN
		}
	}
	return c
}

func (c *peekConn) WaitReadable() error { return c.rc.Read(c.fn) }
