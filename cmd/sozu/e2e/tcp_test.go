package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// tcpEcho echoes what it reads and half-closes at the client's EOF.
func tcpEcho(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.Copy(c, c)
	c.(countingConn).Conn.(*net.TCPConn).CloseWrite()
}

// TestTCP runs sozu with three TCP listeners: plain (to an echo origin),
// sendProxy (send_proxy = true, to an origin that reads the PROXY header)
// and expectProxy (expect_proxy = true, relayed with send_proxy to the
// same kind of origin, which then sees the source the client declared).
func TestTCP(t *testing.T) {
	dir := t.TempDir()
	echo := startRawOrigin(t, tcpEcho)
	headers := make(chan proxyproto.Header, 8)
	withHeader := func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		h, err := proxyproto.Parse(c, 0)
		if err != nil {
			t.Errorf("origin: reading the PROXY header: %v", err)
			return
		}
		headers <- h
		tcpEcho(c)
	}
	ppOrigin := startRawOrigin(t, withHeader)
	plain := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sendProxy := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	expectProxy := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "tcp"
address = %[2]q

[[listeners]]
protocol = "tcp"
address = %[3]q

[[listeners]]
protocol = "tcp"
address = %[4]q
expect_proxy = true
front_timeout = 2

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[2]q } ]
backends = [ { address = %[5]q } ]

[clusters.send]
protocol = "tcp"
send_proxy = true
frontends = [ { address = %[3]q } ]
backends = [ { address = %[6]q } ]

[clusters.relay]
protocol = "tcp"
send_proxy = true
frontends = [ { address = %[4]q } ]
backends = [ { address = %[6]q } ]
`, sock, plain, sendProxy, expectProxy, echo.addr, ppOrigin.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)
	// A TCP listener accepts before its worker serves it (the kernel
	// queues connections), so wait for an echo, not for a connect.
	sozutest.WaitFor(t, 20*time.Second, "the TCP listener echoes", func() bool {
		c, err := net.DialTimeout("tcp", plain, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, "x"); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		return err == nil
	})

	dialTCP := func(t *testing.T, addr string) *net.TCPConn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c.(*net.TCPConn)
	}

	t.Run("100 MiB echoed intact", func(t *testing.T) {
		c := dialTCP(t, plain)
		const size = 100 << 20
		want := sha256.New()
		errc := make(chan error, 1)
		go func() {
			// Random chunks, hashed as they are sent: 100 MiB never sits
			// in memory.
			chunk := make([]byte, 1<<20)
			for range size / len(chunk) {
				rand.Read(chunk)
				want.Write(chunk)
				if _, err := c.Write(chunk); err != nil {
					errc <- err
					return
				}
			}
			errc <- c.CloseWrite()
		}()
		got := sha256.New()
		n, err := io.Copy(got, c)
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("sending: %v", err)
		}
		if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Fatalf("echoed %d bytes, sha256 %x; sent %d bytes, sha256 %x", n, got.Sum(nil), size, want.Sum(nil))
		}
	})

	t.Run("half-close", func(t *testing.T) {
		c := dialTCP(t, plain)
		msg := bytes.Repeat([]byte("half-close "), 100_000) // ~1 MiB: most of the echo comes back after CloseWrite
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c) // returns at the proxy's EOF
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(b), err)
		}
		if !bytes.Equal(b, msg) {
			t.Fatalf("got %d bytes back, want %d", len(b), len(msg))
		}
	})

	t.Run("send_proxy writes the client's address", func(t *testing.T) {
		c := dialTCP(t, sendProxy)
		io.WriteString(c, "ping")
		c.CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
			t.Fatalf("echo %q, %v", b, err)
		}
		h := <-headers
		src, dst := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
		if h.Command != proxyproto.Proxy || h.Source != src || h.Destination != dst {
			t.Fatalf("origin got %+v, want PROXY %v → %v", h, src, dst)
		}
	})

	t.Run("expect_proxy parses the client's header", func(t *testing.T) {
		src, dst := netip.MustParseAddrPort("203.0.113.9:61000"), netip.MustParseAddrPort("198.51.100.1:443")
		c := dialTCP(t, expectProxy)
		c.Write(append(proxyproto.Append(nil, src, dst), "ping"...))
		c.CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
			t.Fatalf("echo %q, %v", b, err)
		}
		if h := <-headers; h.Source != src || h.Destination != dst {
			t.Fatalf("origin got %+v, want %v → %v", h, src, dst)
		}
	})

	t.Run("expect_proxy closes a connection without header", func(t *testing.T) {
		before := ppOrigin.conns.Load()
		c := dialTCP(t, expectProxy)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("got %q", b)
		}
		if n := ppOrigin.conns.Load(); n != before {
			t.Fatalf("the origin was connected (%d → %d)", before, n)
		}
	})

	if !p.Alive() {
		t.Fatalf("sozu died:\n%s", p.Out)
	}
}
