package splice

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetCapacity: SetCapacity sizes the pipes made after it; 0 gives the
// kernel's default back; a size over 1 GiB is refused.
func TestSetCapacity(t *testing.T) {
	defer SetCapacity(0)
	size := func() int {
		t.Helper()
		free.Lock()
		free.l = nil // a new pipe, not a reused one
		free.Unlock()
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Put()
		n, err := unix.FcntlInt(uintptr(p.r), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	def := size()
	if err := SetCapacity(256 << 10); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != 256<<10 {
		t.Fatalf("pipe capacity %d after SetCapacity(256 KiB), want %d", got, 256<<10)
	}
	if err := SetCapacity(1 << 31); err == nil {
		t.Fatal("SetCapacity(2 GiB) accepted")
	}
	if err := SetCapacity(0); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != def {
		t.Fatalf("pipe capacity %d after SetCapacity(0), want the default %d", got, def)
	}
}

// TestFillDrain moves bytes between two socket pairs through a pipe: Fill
// says EAGAIN when the source is empty and 0 at its end; drain empties the
// pipe; Put keeps an empty pipe and closes one with bytes left.
func TestFillDrain(t *testing.T) {
	src, dst := socketPair(t), socketPair(t)
	p, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Fill(src[1], 1<<20); err != unix.EAGAIN {
		t.Fatalf("Fill from an empty socket: %v, want EAGAIN", err)
	}
	msg := bytes.Repeat([]byte("0123456789"), 1000)
	unix.Write(src[0], msg)
	n, err := p.Fill(src[1], 1<<20)
	if err != nil || n != len(msg) || p.Len() != len(msg) {
		t.Fatalf("Fill: %d, %v (Len %d), want %d", n, err, p.Len(), len(msg))
	}
	before := Moved()
	if n, err := p.drain(dst[0]); err != nil || n != len(msg) || p.Len() != 0 {
		t.Fatalf("Drain: %d, %v (Len %d), want %d", n, err, p.Len(), len(msg))
	}
	if Moved()-before != int64(len(msg)) {
		t.Fatalf("Moved grew by %d, want %d", Moved()-before, len(msg))
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(fdReader(dst[1]), got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("drained bytes differ: %v", err)
	}
	unix.Shutdown(src[0], unix.SHUT_WR)
	if n, err := p.Fill(src[1], 1<<20); n != 0 || err != nil {
		t.Fatalf("Fill at the end of stream: %d, %v; want 0, nil", n, err)
	}
	out0 := CheckedOut()
	p.Put()
	if CheckedOut() != out0-1 {
		t.Fatalf("CheckedOut %d after Put, want %d", CheckedOut(), out0-1)
	}
}

func socketPair(t *testing.T) [2]int {
	t.Helper()
	// A TCP pair: splice(2) wants a socket, and unix sockets do not splice
	// into pipes on every kernel.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	fd := func(conn net.Conn) int {
		f, err := conn.(*net.TCPConn).File() // a blocking duplicate
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fd := int(f.Fd()) // Fd puts it in blocking mode, each call
		unix.SetNonblock(fd, true)
		return fd
	}
	return [2]int{fd(c), fd(s)}
}

type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		if err == unix.EAGAIN {
			var fds = []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
			unix.Poll(fds, 5000)
			continue
		}
		if n == 0 && err == nil {
			return 0, io.EOF
		}
		return n, err
	}
}
