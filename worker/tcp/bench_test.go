package tcp

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkRelay measures one round trip of 32 KiB, then of 128 bytes,
// through the relay (client → proxy → echo origin → proxy → client) on an
// established connection; the allocations reported are the relay's
// per-chunk cost, which must stay 0.
func BenchmarkRelay(b *testing.B) {
	for _, size := range []int{32 << 10, 128} {
		b.Run(strconv.Itoa(size), func(b *testing.B) { benchmarkRelay(b, size) })
	}
}

func benchmarkRelay(b *testing.B, size int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	_, addr := start(b, &Listener{}, false, ln.Addr().(*net.TCPAddr).AddrPort())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRelayDoesNotAllocate: once a connection is established, relaying
// costs no allocation per chunk (the whole process is measured, so a few
// are allowed for the runtime's own background work), though each
// direction checks its buffer out of the pool per burst of bytes.
func TestRelayDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops Puts at random: relay buffers are pooled per read")
	}
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	buf := make([]byte, 16<<10)
	roundTrip := func() {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		roundTrip()
	}
	const rounds = 500
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range rounds {
		roundTrip()
	}
	runtime.ReadMemStats(&m1)
	if n := m1.Mallocs - m0.Mallocs; n > rounds/10 {
		t.Fatalf("%d allocations for %d round trips of %d bytes", n, rounds, len(buf))
	}
}
