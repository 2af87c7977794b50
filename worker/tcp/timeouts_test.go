package tcp

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// blackhole returns a loopback address whose connects never complete: a
// listening socket with a backlog of 0 that never accepts, its accept queue
// filled by one connection. Linux then drops every SYN (the accept queue is
// full), so a connect waits for its own timeout, deterministically.
func blackhole(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	filler, err := net.DialTimeout("tcp", ap.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	return ap
}

// closedWithin waits for the proxy to close c (EOF or reset) and returns how
// long that took from t0; it fails the test after limit.
func closedWithin(t *testing.T, c net.Conn, t0 time.Time, limit time.Duration) time.Duration {
	t.Helper()
	c.SetReadDeadline(t0.Add(limit))
	b, err := io.ReadAll(c)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("not closed %v after the start (got %q)", limit, b)
		}
	}
	if len(b) != 0 {
		t.Fatalf("got %q before the close", b)
	}
	return time.Since(t0)
}

func TestFrontTimeout(t *testing.T) {
	closed := make(chan struct{})
	o := startOrigin(t, func(c net.Conn) { echoOnce(c); io.Copy(io.Discard, c); close(closed) })
	const idle = 400 * time.Millisecond
	_, addr := start(t, &Listener{FrontTimeout: idle, BackTimeout: 30 * time.Second}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "x")
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if d := closedWithin(t, c, t0, 10*time.Second); d < idle-idle/8 || d > idle+3*time.Second {
		t.Fatalf("an idle client was cut %v after its last byte, front timeout %v", d, idle)
	}
	waitClosed(t, closed, "the backend connection")
}

func TestBackTimeout(t *testing.T) {
	closed := make(chan struct{})
	o := startOrigin(t, func(c net.Conn) { io.Copy(io.Discard, c); close(closed) }) // never answers
	const idle = 400 * time.Millisecond
	_, addr := start(t, &Listener{FrontTimeout: 30 * time.Second, BackTimeout: idle}, false, o.addr)
	c := dial(t, addr)
	t0 := time.Now()
	if d := closedWithin(t, c, t0, 10*time.Second); d < idle-idle/8 || d > idle+3*time.Second {
		t.Fatalf("an idle backend was cut after %v, back timeout %v", d, idle)
	}
	waitClosed(t, closed, "the backend connection")
}

// TestIdleMeasuredFromTheLastByte checks that the idle timeout runs from
// the last byte either way: a connection whose backend talked a while
// ago is closed one timeout after that, not up to two.
func TestIdleMeasuredFromTheLastByte(t *testing.T) {
	const idle = time.Second
	o := startOrigin(t, func(c net.Conn) {
		for range 4 { // traffic from the backend only, for 200 ms
			if _, err := io.WriteString(c, "t"); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		io.Copy(io.Discard, c)
	})
	_, addr := start(t, &Listener{FrontTimeout: idle, BackTimeout: idle}, false, o.addr)
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var last time.Time
	buf := make([]byte, 8)
	got := 0
	for {
		n, err := c.Read(buf)
		if n > 0 {
			got += n
			last = time.Now()
		}
		if err != nil {
			break
		}
	}
	if got == 0 {
		t.Fatal("got nothing")
	}
	// Measured from the start of the idle time, the old lazy deadline
	// closed up to 1.85 s after the last byte.
	if d := time.Since(last); d < idle-idle/8 || d > idle+600*time.Millisecond {
		t.Fatalf("closed %v after the last byte, idle timeout %v", d, idle)
	}
}

func TestConnectTimeout(t *testing.T) {
	const ct = 300 * time.Millisecond
	t.Run("one backend", func(t *testing.T) {
		_, addr := start(t, &Listener{ConnectTimeout: ct}, false, blackhole(t))
		c := dial(t, addr)
		if d := closedWithin(t, c, time.Now(), 10*time.Second); d < ct-ct/8 || d > ct+3*time.Second {
			t.Fatalf("closed after %v, connect timeout %v", d, ct)
		}
	})
	t.Run("every backend tried once", func(t *testing.T) {
		_, addr := start(t, &Listener{ConnectTimeout: ct}, false, blackhole(t), blackhole(t))
		c := dial(t, addr)
		if d := closedWithin(t, c, time.Now(), 10*time.Second); d < 2*ct-ct/8 || d > 2*ct+3*time.Second {
			t.Fatalf("closed after %v, want two attempts of %v", d, ct)
		}
	})
	t.Run("a live backend after a dead one", func(t *testing.T) {
		o := startOrigin(t, echo)
		_, addr := start(t, &Listener{ConnectTimeout: ct}, false, blackhole(t), o.addr)
		for range 3 {
			c := dial(t, addr)
			io.WriteString(c, "x")
			c.CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != "x" {
				t.Fatalf("%q, %v", b, err)
			}
		}
	})
}

// echoOnce echoes one read.
func echoOnce(c net.Conn) {
	b := make([]byte, 64)
	n, _ := c.Read(b)
	c.Write(b[:n])
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s is still open", what)
	}
}

// TestSlowSteadyReaderNotCut: the front timeout is an inactivity timeout.
// A client that reads steadily but slower than the backend sends (a small
// receive buffer, 4 KiB every few ms) makes each of the relay's writes
// (a 32 KiB buffer, or a pipe of up to 1 MiB when splicing) last far
// longer than the timeout; it gets the whole stream, since no write ever
// waits the timeout without moving a byte.
func TestSlowSteadyReaderNotCut(t *testing.T) {
	const (
		size = 3 << 20
		idle = 250 * time.Millisecond
	)
	blob, addr := servedBlob(t, size, &Listener{FrontTimeout: idle, BackTimeout: 30 * time.Second})
	readPaced(t, dialSmallRcvbuf(t, addr), blob, 2*time.Millisecond, 4096, idle)
}

// TestStalledReaderCut: a client that stops reading is cut once a write
// to it has moved nothing for the front timeout (the backend's connection
// with it), however much its side still had to take.
func TestStalledReaderCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr, cut := floodedRelay(t, idle)
	dialSmallRcvbuf(t, addr) // reads nothing
	t0 := time.Now()
	select {
	case at := <-cut:
		if d := at.Sub(t0); d < idle-idle/8 {
			t.Fatalf("the relay was cut %v after the start, before the front timeout %v", d, idle)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("a client reading nothing was not cut 15 s after the start (front timeout %v)", idle)
	}
}

// TestSlowReaderLongWriteNotCutByTheOtherDirection: while one direction
// is in a write that outlasts the idle timeout but still moves bytes (a
// client reading slowly), the other direction, whose peer has nothing to
// send, must not take the connection for idle: the client is busy taking
// bytes. Each of the relay's writes to this client (32 KiB, or a pipe of
// 64 KiB) lasts about 300 ms or more, above the 200 ms front timeout.
func TestSlowReaderLongWriteNotCutByTheOtherDirection(t *testing.T) {
	const (
		size = 256 << 10
		idle = 200 * time.Millisecond
	)
	blob, addr := servedBlob(t, size, &Listener{FrontTimeout: idle, BackTimeout: idle})
	readPaced(t, dialSmallWindow(t, addr), blob, 10*time.Millisecond, 1024, idle) // about 100 KB/s
}

// TestStalledReaderCutOneTimeoutAfterItsLastByte: a client that read
// steadily, then stopped, is cut one front timeout after its side last
// took a byte (its kernel's receive queue last grew), not up to two: the
// write under way when it stopped had moved bytes, which must not earn it
// a whole new timeout.
func TestStalledReaderCutOneTimeoutAfterItsLastByte(t *testing.T) {
	const idle = time.Second
	addr, cut := floodedRelay(t, idle)
	c := dialSmallWindow(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// Reads steadily for 300 ms (pacing, not synchronisation), then
	// stops: the relay's write under way then has moved bytes.
	buf := make([]byte, 1024)
	for t0 := time.Now(); time.Since(t0) < 300*time.Millisecond; {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The client's kernel still takes a few bytes after the last read
	// (window probes): the time its receive queue last grew is when the
	// relay last moved a byte to it. Sampled every 5 ms until the cut.
	queued := inQueue(t, c)
	// The relay's own socket still takes bytes into its send buffer later
	// (it grows, or had room the poller did not report), which is no
	// progress of the peer's. Re-arming a whole timeout at each deadline
	// whose write moved bytes cut it after 2.7 s. The relay sees progress
	// a quarter timeout late at most: 5/4 timeouts, and some slack.
	cutAfterLastByte(t, cut, queued, idle, idle-idle/8-10*time.Millisecond, idle+idle/2)
}

// TestTricklingReaderCut: a client that reads one byte per half timeout
// forever (a slow-read attack) frees less than a segment per timeout: its
// kernel acknowledges nothing new, so the relay is cut about one timeout
// after the client's side last took a segment, as HAProxy's `timeout
// client` would (a write that makes no progress for the timeout).
func TestTricklingReaderCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr, cut := floodedRelay(t, idle)
	c := dialSmallWindow(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t0 := time.Now()
	tick := time.NewTicker(idle / 2) // pacing: the attack's rhythm
	defer tick.Stop()
	one := make([]byte, 1)
	for {
		select {
		case at := <-cut:
			t.Logf("cut %v after the start (front timeout %v)", at.Sub(t0), idle)
			return
		case <-tick.C:
			if _, err := c.Read(one); err != nil {
				t.Logf("cut %v after the start (front timeout %v): %v", time.Since(t0), idle, err)
				return
			}
			if time.Since(t0) > 10*time.Second {
				t.Fatalf("a client reading a byte per %v still served %v on (front timeout %v)", idle/2, time.Since(t0), idle)
			}
		}
	}
}

// floodedRelay starts a relay with the front timeout idle to an origin
// that writes to it without end; the origin's first failed write (the
// relay cut the connection) sends its time on cut.
func floodedRelay(t *testing.T, idle time.Duration) (addr string, cut <-chan time.Time) {
	t.Helper()
	ch := make(chan time.Time, 1)
	o := startOrigin(t, func(c net.Conn) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				ch <- time.Now()
				return
			}
		}
	})
	_, addr = start(t, &Listener{FrontTimeout: idle, BackTimeout: 30 * time.Second}, false, o.addr)
	return addr, ch
}

// inQueue returns a function reporting the bytes in c's receive queue
// (SIOCINQ): when it grows, the client's side took bytes from the relay.
func inQueue(t *testing.T, c net.Conn) func() int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return func() (n int) {
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return n
	}
}

// cutAfterLastByte samples queued every 5 ms until the relay is cut and
// checks that the cut came between lo and hi after the client's side last
// took a byte (its receive queue last changed); it fails the test when no
// cut comes within 15 s.
func cutAfterLastByte(t *testing.T, cut <-chan time.Time, queued func() int, idle, lo, hi time.Duration) {
	t.Helper()
	give := time.After(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last, q := time.Now(), queued()
	for {
		select {
		case at := <-cut:
			d := at.Sub(last)
			t.Logf("cut %v after the client's side last took a byte (front timeout %v)", d, idle)
			if d < lo || d > hi {
				t.Fatalf("cut %v after the client's side last took a byte, front timeout %v: want between %v and %v", d, idle, lo, hi)
			}
			return
		case <-tick.C:
			if n := queued(); n != q {
				last, q = time.Now(), n
			}
		case <-give:
			t.Fatal("a client reading nothing was not cut within 15 s")
		}
	}
}

// dialSmallRcvbuf dials addr with a 4 KiB receive buffer, so that the
// proxy's writes wait on this client's reading; closed at the end of the
// test.
func dialSmallRcvbuf(t *testing.T, addr string) net.Conn {
	t.Helper()
	return dialWith(t, addr, func(fd int) { syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
}

// dialSmallWindow is dialSmallRcvbuf with a 536-byte MSS as well: the
// proxy's send buffer, which grows with the MSS (to megabytes on
// loopback), stays small too, so that its writes wait on this client's
// reading from the first bytes.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	return dialWith(t, addr, func(fd int) {
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
	})
}

// dialWith dials addr, calling set on the socket before the connect;
// closed at the end of the test.
func dialWith(t *testing.T, addr string, set func(fd int)) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { set(int(fd)) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestReaderStoppingEarlyInAWriteNotCutSooner: a client that still reads
// for a moment after the relay's write to it began, then stops, took its
// last byte a little after the write began; it must not be cut sooner
// than one timeout after that byte. The write's first look at the peer's
// acknowledgements (a quarter timeout in) had nothing to compare with and
// counted no progress: the cut came one timeout after the write began,
// up to a quarter timeout before one timeout after the client's last byte
// (TestStalledReaderCutOneTimeoutAfterItsLastByte saw 796 ms of 1 s under
// -race).
func TestReaderStoppingEarlyInAWriteNotCutSooner(t *testing.T) {
	const idle = 2 * time.Second
	addr, cut := floodedRelay(t, idle)
	c := dialSmallWindow(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	queued := inQueue(t, c)
	// The client's window fills at once and the relay's write to it
	// waits; the client reads 1 KiB every 5 ms (pacing, not
	// synchronisation) from 50 ms to 300 ms in, well within the first
	// quarter timeout of that write, then stops.
	t0 := time.Now()
	for queued() == 0 {
		if time.Since(t0) > 5*time.Second {
			t.Fatal("no byte reached the client")
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 1024)
	time.Sleep(50 * time.Millisecond)
	for time.Since(t0) < 300*time.Millisecond {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cutAfterLastByte(t, cut, queued, idle, idle-idle/16, idle+idle/2)
}

// readPaced reads want from c, at most chunk bytes every tick: a reader
// slow on purpose but never silent for anything near the idle timeout
// (pacing, not synchronisation). It fails the test when the proxy cuts the
// connection first or the bytes differ.
func readPaced(t *testing.T, c net.Conn, want []byte, every time.Duration, chunk int, idle time.Duration) {
	t.Helper()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	tick := time.NewTicker(every)
	defer tick.Stop()
	got := make([]byte, 0, len(want))
	buf := make([]byte, chunk)
	t0 := time.Now()
	for len(got) < len(want) {
		<-tick.C
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("cut after %d of %d bytes (%v in, idle timeout %v): %v", len(got), len(want), time.Since(t0), idle, err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes received differ from those sent")
	}
	t.Logf("%d bytes in %v", len(want), time.Since(t0))
}

// servedBlob starts a relay l in front of an origin that sends each client
// the same size bytes, then closes; it returns the bytes and the relay's
// address.
func servedBlob(t *testing.T, size int, l *Listener) ([]byte, string) {
	t.Helper()
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(i*13 + i>>8)
	}
	o := startOrigin(t, func(c net.Conn) { c.Write(blob); c.Close() })
	_, addr := start(t, l, false, o.addr)
	return blob, addr
}
