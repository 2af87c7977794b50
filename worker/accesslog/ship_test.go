package accesslog

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/logframe"
)

// packetPair returns both ends of a SOCK_SEQPACKET socketpair, the log
// channel's kind of socket.

func packetPair(t testing.TB) (worker, supervisor net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "log channel")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns[0], conns[1]
}

type record struct {
	kind byte
	rec  string
}

// readRecords reads packets until n records arrived, in order.
func readRecords(t *testing.T, c net.Conn, n int) []record {
	t.Helper()
	var got []record
	buf := make([]byte, logframe.MaxPacket)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < n {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		for p := buf[:m]; len(p) > 0; {
			k, rec, rest, err := logframe.Next(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, record{k, string(rec)})
			p = rest
		}
	}
	return got
}

func TestShipperDelivers(t *testing.T) {
	w, sup := packetPair(t)
	s := NewShipper(w, 0, 0, "worker 0")
	go s.Run()
	defer s.Close()
	l := &Logger{Enc: Encoder{Format: JSON}, Ship: s}
	for range 100 {
		l.Log(httpRecord())
	}
	s.MainLog().Write([]byte("hello\n"))
	recs := readRecords(t, sup, 101)
	for i, r := range recs[:100] {
		if r.kind != logframe.Access || !strings.Contains(r.rec, `"trace":{"id":"`+requestID.String()) {
			t.Fatalf("record %d: %d %s", i, r.kind, r.rec)
		}
	}
	if r := recs[100]; r.kind != logframe.Main || r.rec != "hello\n" {
		t.Errorf("main line %d %q", r.kind, r.rec)
	}
}

// TestShipperNeverBlocks: a supervisor that stops reading makes the
// records drop, counted and reported, while Log keeps returning at once.
func TestShipperNeverBlocks(t *testing.T) {
	w, sup := packetPair(t)
	s := NewShipper(w, 16, 50*time.Millisecond, "worker 7")
	go s.Run()
	defer s.Close()
	l := &Logger{Enc: Encoder{Format: Ascii}, Ship: s}
	start := time.Now()
	const n = 5000
	for range n {
		l.Log(httpRecord())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d records took %v with a stalled reader", n, d)
	}
	if s.Dropped.Load() == 0 {
		t.Fatal("no record dropped with a stalled reader")
	}
	// Reading again lets the report through.
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, logframe.MaxPacket)
	for time.Now().Before(deadline) {
		sup.SetReadDeadline(deadline)
		m, err := sup.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		for p := buf[:m]; len(p) > 0; {
			k, rec, rest, _ := logframe.Next(p)
			if k == logframe.Main && strings.Contains(string(rec), "worker 7: log channel full: dropped") {
				return
			}
			p = rest
		}
	}
	t.Fatal("no drop report")
}

// TestShipperReportsOversizeRecord: a main log line larger than a packet
// carries is dropped, counted, and the drop report says why, not that
// the log channel is full.
func TestShipperReportsOversizeRecord(t *testing.T) {
	w, sup := packetPair(t)
	s := NewShipper(w, 0, 50*time.Millisecond, "worker 3")
	go s.Run()
	defer s.Close()
	s.MainLog().Write([]byte(strings.Repeat("u", 1<<20) + "\n"))
	if s.Dropped.Load() != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped.Load())
	}
	const want = "worker 3: log channel: dropped 1 log records in the last 50ms (1 in all); last error: a record of 1048577 bytes, larger than the 131066 a log packet carries"
	if r := readRecords(t, sup, 1)[0]; r.kind != logframe.Main || !strings.Contains(r.rec, want) {
		t.Errorf("drop report %q, want %q", r.rec, want)
	}
}
