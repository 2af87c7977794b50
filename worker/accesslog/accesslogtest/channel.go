// Package accesslogtest gives tests an access Logger that ships over a
// real log channel (a SOCK_SEQPACKET socketpair framed by proto/logframe,
// as a worker's fd 6), and the records read from its other end, as the
// supervisor reads them.
package accesslogtest

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/logframe"
	"github.com/sozu-go/sozu/worker/accesslog"
)

// Sink collects the access records read from the channel.
type Sink struct {
	mu   sync.Mutex
	recs [][]byte
	keep bool
}

// Channel returns a Logger encoding in format (tag WRK-00) and shipping
// over a new channel, and the Sink reading it. With keep false the records
// are read and dropped (benchmarks). Both ends close with the test.
func Channel(t testing.TB, format accesslog.Format, keep bool) (*accesslog.Logger, *Sink) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "log channel")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	ship := accesslog.NewShipper(conns[0], 0, 0, "test")
	go ship.Run()
	sink := &Sink{keep: keep}
	go sink.read(conns[1])
	t.Cleanup(func() { ship.Close(); conns[0].Close(); conns[1].Close() })
	return &accesslog.Logger{Enc: accesslog.Encoder{Format: format, Tag: "WRK-00"}, Ship: ship}, sink
}

func (s *Sink) read(c net.Conn) {
	buf := make([]byte, logframe.MaxPacket)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		for p := buf[:n]; len(p) > 0; {
			kind, rec, rest, err := logframe.Next(p)
			if err != nil {
				return
			}
			if kind == logframe.Access && s.keep {
				s.mu.Lock()
				s.recs = append(s.recs, bytes.Clone(rec))
				s.mu.Unlock()
			}
			p = rest
		}
	}
}

// Raw returns a copy of the records received so far.
func (s *Sink) Raw() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.recs...)
}

// JSON waits (10 s at most) until at least n records arrived, then returns
// every record received, decoded from JSON.
func (s *Sink) JSON(t testing.TB, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Raw()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d access records (%d arrived)", n, len(s.Raw()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	var out []map[string]any
	for _, r := range s.Raw() {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("access record: %v: %s", err, r)
		}
		out = append(out, m)
	}
	return out
}

// Field follows a path of keys in a decoded record; nil when absent.
func Field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}
