package logtarget

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// reports collects Report lines.
type reports struct {
	mu    sync.Mutex
	lines []string
}

func (r *reports) add(m string) { r.mu.Lock(); r.lines = append(r.lines, m); r.mu.Unlock() }

func (r *reports) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or 10 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		kind kind
		addr string
		err  string
	}{
		{"stdout", kindStdout, "", ""},
		{"", kindStdout, "", ""},
		{"stderr", kindStderr, "", ""},
		{"/var/log/sozu.log", kindFile, "/var/log/sozu.log", ""},
		{"file:///var/log/a.log", kindFile, "/var/log/a.log", ""},
		{"udp://127.0.0.1:514", kindUDP, "127.0.0.1:514", ""},
		{"tcp://logs:6000", kindTCP, "logs:6000", ""},
		{"unix:///run/log.sock", kindUnix, "/run/log.sock", ""},
		{"udp://nohost", 0, "", "log target udp://nohost: address nohost: missing port in address"},
		{"unix://", 0, "", "log target unix://: no socket path"},
		{"http://x", 0, "", `invalid log target "http://x": want stdout, stderr, udp://host:port, tcp://host:port, unix://path or file://path`},
	} {
		k, addr, err := parse(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parse(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || k != tt.kind || addr != tt.addr {
			t.Errorf("parse(%q) = %v %q %v", tt.in, k, addr, err)
		}
	}
}

func TestFileAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	tg, err := Open("file://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	fmt.Fprintf(tg, "one\n")
	waitFor(t, "the first line", func() bool { b, _ := os.ReadFile(path); return string(b) == "one\n" })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Reopen(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tg, "two\n")
	waitFor(t, "the line after reopen", func() bool { b, _ := os.ReadFile(path); return string(b) == "two\n" })
	if b, _ := os.ReadFile(path + ".1"); string(b) != "one\n" {
		t.Errorf("rotated file holds %q", b)
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tg, err := Open("udp://"+pc.LocalAddr().String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("rec 1"))
	tg.Write([]byte("rec 2"))
	buf := make([]byte, 100)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"rec 1", "rec 2"} {
		n, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("datagram %q %v, want %q", buf[:n], err, want)
		}
	}
}

func TestUnixDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tg, err := Open("unix://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("line\n"))
	buf := make([]byte, 100)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "line\n" {
		t.Fatalf("datagram %q %v", buf[:n], err)
	}
}

// TestTCPReconnects: the peer goes away and comes back on the same
// address; records flow again after the backoff.
func TestTCPReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var rep reports
	tg, err := Open("tcp://"+addr, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Report: rep.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("first\n"))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("read %q %v", l, err)
	}
	c.Close()
	ln.Close()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	// Records written while the peer is away are lost (the first write
	// on the dead connection fails); keep writing until one arrives.
	var c2 net.Conn
	waitFor(t, "a reconnection", func() bool {
		tg.Write([]byte("again\n"))
		select {
		case c2 = <-accepted:
			return true
		default:
			return false
		}
	})
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := bufio.NewReader(c2).ReadString('\n'); err != nil || l != "again\n" {
		t.Fatalf("after reconnecting: %q %v", l, err)
	}
}

// TestStalledTCPPeerNeverBlocks: a peer that accepts and never reads
// fills the socket buffers; Write keeps returning at once, the records
// are dropped, counted and reported.
func TestStalledTCPPeerNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			<-stop // a stalled peer: accepts, never reads
		}
	}()
	var rep reports
	tg, err := Open("tcp://"+ln.Addr().String(), Options{QueueLen: 64, ReportEvery: 20 * time.Millisecond,
		WriteTimeout: time.Minute, Report: rep.add})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { go tg.Close() }() // its writer is stuck on the stalled peer
	line := []byte(strings.Repeat("x", 1023) + "\n")
	var slowest time.Duration
	for range 20000 { // 20 MB: more than the socket buffers hold
		start := time.Now()
		tg.Write(line)
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 100*time.Millisecond {
		t.Errorf("a Write took %v with a stalled peer", slowest)
	}
	if tg.Dropped() == 0 {
		t.Fatal("nothing dropped")
	}
	waitFor(t, "a drop report", func() bool { return rep.has("dropped") })
}

// TestWriteRecords: a run of records written at once lands in order with
// single records, counts as its records against the queue length, and
// is refused by a datagram target's Stream.
func TestWriteRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	tg, err := Open("file://"+path, Options{QueueLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.Stream() {
		t.Fatal("a file is not a stream")
	}
	tg.WriteRecords([]byte("a\nb\n"), 2)
	fmt.Fprintf(tg, "c\n")
	big := strings.Repeat("x\n", 40<<10) // larger than half a batch: written on its own
	tg.WriteRecords([]byte(big), 1)
	fmt.Fprintf(tg, "d\n")
	want := "a\nb\nc\n" + big + "d\n"
	waitFor(t, "the records in order", func() bool { b, _ := os.ReadFile(path); return string(b) == want })
	if d := tg.Dropped(); d != 0 {
		t.Errorf("%d dropped", d)
	}
	tg.WriteRecords([]byte(strings.Repeat("n\n", 9)), 9) // more records than the queue holds
	if d := tg.Dropped(); d != 9 {
		t.Errorf("a run over the queue length: %d dropped, want 9", d)
	}

	u, err := Open("udp://127.0.0.1:9", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.Stream() {
		t.Error("a udp:// target is a stream")
	}
}

// TestWriteErrorReported: a file whose writes fail (a full disk: /dev/full
// answers ENOSPC) drops the records, counted, and the drop report names
// the error rather than a slow target.
func TestWriteErrorReported(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	var rep reports
	tg, err := Open("file:///dev/full", Options{ReportEvery: 20 * time.Millisecond, Report: rep.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("line\n"))
	waitFor(t, "the drop", func() bool { return tg.Dropped() == 1 })
	waitFor(t, "a drop report naming ENOSPC", func() bool { return rep.has("last write error: write /dev/full: no space left on device") })
}

// TestTCPPeerClosedBeforeWrite: a peer that closed its end (restarted),
// even after sending something, is reconnected before the next batch is
// written, so that batch is not written into the dead connection, lost
// and never counted.
func TestTCPPeerClosedBeforeWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var rep reports
	tg, err := Open("tcp://"+ln.Addr().String(), Options{MinBackoff: 10 * time.Millisecond, Report: rep.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("first\n"))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("read %q %v", l, err)
	}
	c.Write([]byte("bye\n")) // what a peer says before closing hides its FIN from a peek
	target, peer := c.RemoteAddr().String(), c.LocalAddr().String()
	c.Close()
	waitFor(t, "the FIN to reach the target's socket (CLOSE_WAIT)", func() bool { return tcpState(t, target, peer) == tcpCloseWait })
	lines := make(chan string, 8)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- l
		}
	}()
	// One batch at a time: the next is written once the peer has the
	// previous one.
	for _, want := range []string{"second\n", "third\n"} {
		tg.Write([]byte(want))
		var l string
		select {
		case l = <-lines:
		case <-time.After(5 * time.Second):
		}
		if l != want {
			t.Fatalf("after the peer closed: got %q, want %q (dropped %d, reports %q)", l, want, tg.Dropped(), rep.lines)
		}
	}
	if d := tg.Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// tcpCloseWait is the CLOSE_WAIT state in /proc/net/tcp: the peer's FIN
// is in, the socket is not closed.
const tcpCloseWait = "08"

// tcpState returns the state (/proc/net/tcp, in hex) of the IPv4 TCP
// socket from local to remote, both "ip:port", or "" when there is none.
func tcpState(t *testing.T, local, remote string) string {
	t.Helper()
	hex := func(s string) string {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As4()
		// The address as the kernel prints it, a 32-bit word in host
		// order, then the port.
		return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), ap.Port())
	}
	l, r := hex(local), hex(remote)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[1] == l && f[2] == r {
			return f[3]
		}
	}
	return ""
}

// TestReopenWritesQueuedToOldFile: Reopen returns once the records queued
// before it are in the old file (logrotate compresses it next); none
// lands in the new one, none is lost or written twice.
func TestReopenWritesQueuedToOldFile(t *testing.T) {
	for round := range 50 {
		path := filepath.Join(t.TempDir(), "access.log")
		tg, err := Open("file://"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			fmt.Fprintf(tg, "line %d\n", i)
		}
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if err := tg.Reopen(); err != nil {
			t.Fatal(err)
		}
		old, _ := os.ReadFile(path + ".1")
		fmt.Fprintf(tg, "after\n")
		tg.Close()
		cur, _ := os.ReadFile(path)
		if n := strings.Count(string(old), "\n"); n != 2000 || string(cur) != "after\n" {
			t.Fatalf("round %d: the rotated file holds %d lines (want 2000), the new one %d (want 1)",
				round, n, strings.Count(string(cur), "\n"))
		}
	}
}

// TestUnixStreamSocketExplained: unix:// is a datagram socket, as
// upstream's; pointed at a stream socket the report says so, not only
// "protocol wrong type for socket". The records are dropped, counted.
func TestUnixStreamSocketExplained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stream.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var rep reports
	tg, err := Open("unix://"+path, Options{Report: rep.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Write([]byte("line\n"))
	waitFor(t, "the drop", func() bool { return tg.Dropped() == 1 })
	if want := path + " is not a datagram (SOCK_DGRAM) socket"; !rep.has(want) {
		t.Errorf("reports %q lack %q", rep.lines, want)
	}
}
