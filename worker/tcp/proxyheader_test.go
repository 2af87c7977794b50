package tcp

import (
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

const v2sig = "0d0a0d0a000d0a515549540a"

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawOrigin records the first n bytes of each connection, then echoes the
// rest.
func rawOrigin(t *testing.T, n int) (*origin, chan []byte) {
	got := make(chan []byte, 8)
	o := startOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Errorf("origin: %v", err)
			return
		}
		got <- b
		echo(c)
	})
	return o, got
}

// TestExpectProxyByteByByte sends the header one byte per write (one TCP
// segment each, Nagle being off), the payload in the same way.
func TestExpectProxyByteByByte(t *testing.T) {
	o, got := headerOrigin(t)
	_, addr := start(t, &Listener{ExpectProxy: true, FrontTimeout: 5 * time.Second}, true, o.addr)
	src, dst := netip.MustParseAddrPort("192.0.2.7:40000"), netip.MustParseAddrPort("198.51.100.1:5432")
	c := dial(t, addr)
	for _, b := range append(proxyproto.Append(nil, src, dst), "ping"...) {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if h := recv(t, got); h.Source != src || h.Destination != dst {
		t.Fatalf("header %+v, want %v → %v", h, src, dst)
	}
}

// TestExpectProxySlowloris: a header trickled forever is cut at the front
// timeout, counted from the accept, however steadily its bytes arrive.
func TestExpectProxySlowloris(t *testing.T) {
	o := startOrigin(t, echo)
	const ft = 400 * time.Millisecond
	_, addr := start(t, &Listener{ExpectProxy: true, FrontTimeout: ft}, false, o.addr)
	c := dial(t, addr)
	t0 := time.Now()
	hdr := proxyproto.Append(nil, netip.MustParseAddrPort("192.0.2.7:1"), netip.MustParseAddrPort("192.0.2.8:2"))
	done := make(chan time.Duration, 1)
	go func() {
		io.ReadAll(c)
		done <- time.Since(t0)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(10 * time.Second)
	for i := 0; ; i++ {
		select {
		case d := <-done:
			if d < ft-ft/8 || d > ft+3*time.Second {
				t.Fatalf("closed after %v, front timeout %v", d, ft)
			}
			if n := o.conns.Load(); n != 0 {
				t.Fatalf("the backend was connected %d times", n)
			}
			return
		case <-tick.C:
			if i < len(hdr)-1 { // never the last byte
				c.Write(hdr[i : i+1])
			}
		case <-giveUp:
			t.Fatal("a header that never completes was not cut")
		}
	}
}

// TestExpectProxyRefused: what is not a complete, valid v2 header closes
// the connection at once (well before the front timeout) and never
// reaches the backend.
func TestExpectProxyRefused(t *testing.T) {
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{ExpectProxy: true, FrontTimeout: 30 * time.Second}, false, o.addr)
	for _, tt := range []struct{ name, hex string }{
		{"v1 header", hex.EncodeToString([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\nping"))},
		{"v1 short header", hex.EncodeToString([]byte("PROXY UNKNOWN\r\n"))},
		{"HTTP request", hex.EncodeToString([]byte("GET / HTTP/1.0\r\n\r\n"))},
		{"version 1 nibble", v2sig + "11 11 000c c0000201 c6336407 c738 01bb"},
		{"unknown command", v2sig + "2f 11 000c c0000201 c6336407 c738 01bb"},
		{"invalid family", v2sig + "21 44 0000"},
		{"AF_UNIX with PROXY", v2sig + "21 31 00d8" + strings.Repeat("00", 216)},
		{"address block too short", v2sig + "21 21 000c c0000201 c6336407 c738 01bb"},
		{"truncated TLV", v2sig + "21 11 0010 c0000201 c6336407 c738 01bb 05 0002 68"},
		{"length 65535", v2sig + "21 11 ffff c0000201"},
		{"one byte over 232", v2sig + "21 11 00d9 c0000201"},
		{"LOCAL with an unknown family", v2sig + "20 30 0000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.Write(hexBytes(t, tt.hex))
			if d := closedWithin(t, c, time.Now(), 10*time.Second); d > 5*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
	if n := o.conns.Load(); n != 0 {
		t.Fatalf("the backend was connected %d times", n)
	}
	t.Run("closing before any byte", func(t *testing.T) {
		c := dial(t, addr)
		c.CloseWrite()
		closedWithin(t, c, time.Now(), 2*time.Second)
	})
}

// TestExpectProxyAccepted: LOCAL, AF_UNSPEC, IPv6 and TLVs. With send_proxy
// (not relay) the backend gets a new header: the declared client, or the
// connection's own endpoints when the header names none.
func TestExpectProxyAccepted(t *testing.T) {
	o, got := headerOrigin(t)
	_, addr := start(t, &Listener{ExpectProxy: true}, true, o.addr)
	v6src, v6dst := netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::1]:443")
	for _, tt := range []struct {
		name     string
		hex      string
		declared bool // the backend's header names 192.0.2.1:51000 → 198.51.100.7:443
		v6       bool
	}{
		{name: "inet", hex: v2sig + "21 11 000c c0000201 c6336407 c738 01bb", declared: true},
		{name: "inet with TLVs", hex: v2sig + "21 11 001c c0000201 c6336407 c738 01bb 04 0000 05 0002 6869 ea 0005 7670636531", declared: true},
		{name: "inet6", hex: v2sig + "21 21 0024 20010db8000000000000000000000007 20010db8000000000000000000000001 9c40 01bb", v6: true},
		{name: "UDP over inet", hex: v2sig + "21 12 000c c0000201 c6336407 c738 01bb", declared: true},
		{name: "LOCAL", hex: v2sig + "20 00 0000"},
		{name: "LOCAL with addresses", hex: v2sig + "20 11 000c c0000201 c6336407 c738 01bb"},
		{name: "PROXY AF_UNSPEC", hex: v2sig + "21 00 0000"},
		{name: "PROXY AF_UNSPEC with a block", hex: v2sig + "21 00 0004 01020304"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.Write(append(hexBytes(t, tt.hex), "ping"...))
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
			h := recv(t, got)
			want := proxyproto.Header{Command: proxyproto.Proxy,
				Source: c.LocalAddr().(*net.TCPAddr).AddrPort(), Destination: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
			switch {
			case tt.declared:
				want.Source, want.Destination = netip.MustParseAddrPort("192.0.2.1:51000"), netip.MustParseAddrPort("198.51.100.7:443")
			case tt.v6:
				want.Source, want.Destination = v6src, v6dst
			}
			if h != want {
				t.Fatalf("backend got %+v, want %+v", h, want)
			}
		})
	}
}

// TestRelayProxy: RELAY_HEADER forwards the client's header byte for byte,
// TLVs and LOCAL included.
func TestRelayProxy(t *testing.T) {
	for _, hdr := range []string{
		v2sig + "21 11 001c c0000201 c6336407 c738 01bb 04 0000 05 0002 6869 ea 0005 7670636531",
		v2sig + "21 21 0024 20010db8000000000000000000000007 20010db8000000000000000000000001 9c40 01bb",
		v2sig + "20 00 0000",
	} {
		want := hexBytes(t, hdr)
		o, got := rawOrigin(t, len(want)+4)
		reg := backends.NewRegistry(backends.Options{})
		t.Cleanup(reg.Close)
		sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "a", Addr: o.addr, Weight: 100}}, nil)
		// The listener expects nothing: the cluster's RELAY_HEADER does.
		_, addr := start(t, &Listener{Cluster: &Cluster{ID: "c", Backends: sets["c"], ExpectProxy: true, SendProxy: true, RelayProxy: true}}, false)
		c := dial(t, addr)
		c.Write(append(append([]byte(nil), want...), "ping"...))
		if b := recv(t, got); !bytes.Equal(b, append(want, "ping"...)) {
			t.Fatalf("backend got %x\nwant         %x", b, append(want, "ping"...))
		}
	}
}

// TestClusterExpectProxy: a cluster with EXPECT_HEADER reads the header
// even on a listener without expect_proxy, and sends none.
func TestClusterExpectProxy(t *testing.T) {
	o, got := rawOrigin(t, 4)
	reg := backends.NewRegistry(backends.Options{})
	t.Cleanup(reg.Close)
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "a", Addr: o.addr, Weight: 100}}, nil)
	_, addr := start(t, &Listener{Cluster: &Cluster{ID: "c", Backends: sets["c"], ExpectProxy: true}}, false)
	c := dial(t, addr)
	c.Write(append(proxyproto.AppendLocal(nil), "ping"...))
	if b := recv(t, got); string(b) != "ping" {
		t.Fatalf("backend got %q", b)
	}
	c2 := dial(t, addr)
	io.WriteString(c2, "GET / HTTP/1.0\r\n\r\n")
	closedWithin(t, c2, time.Now(), 2*time.Second)
}

// recv receives from ch, failing the test after 10 s.
func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing came")
	}
	panic("unreachable")
}
