package supervisor

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/proto/logframe"
)

// logReader is a supervisor reading one worker's log channel (a real
// SOCK_SEQPACKET pair) into buffers: the worker's end is wc, done closes
// when the reader returns.
type logReader struct {
	s                 *Supervisor
	wc                net.Conn
	done              chan struct{}
	main, access, own bytes.Buffer
}

// startLogReader starts a logReader; direct: the worker writes its access
// log file itself.
func startLogReader(t *testing.T, direct bool) *logReader {
	t.Helper()
	r := &logReader{done: make(chan struct{})}
	log := logrus.New()
	log.Out = &r.own
	r.s = &Supervisor{log: log}
	r.s.SetLogs(Logs{Main: &r.main, Access: &r.access})
	parent, child, err := logChannel()
	if err != nil {
		t.Fatal(err)
	}
	r.wc, err = net.FileConn(child)
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { r.s.readWorkerLogs(7, parent, nil, direct); close(r.done) }()
	return r
}

// A compromised worker flooding its log channel with malformed packets
// must not turn each into a line of the supervisor's own log: the first is
// reported, the rest counted and reported when the channel closes, and
// good records still reach their targets.
func TestMalformedLogPacketsReportedOnce(t *testing.T) {
	r := startLogReader(t, false)
	wc, done, main, own := r.wc, r.done, &r.main, &r.own

	const bad = 2000
	for i := range bad {
		pkt := [][]byte{{9, 1, 'x'}, {logframe.Main, 200, 1}, {logframe.Access}}[i%3]
		if _, err := wc.Write(pkt); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if _, err := wc.Write(logframe.Append(nil, logframe.Main, []byte("good line\n"))); err != nil {
		t.Fatal(err)
	}
	wc.Close()
	<-done
	if !strings.Contains(main.String(), "good line") {
		t.Errorf("the good record after the malformed ones was lost: %q", main.String())
	}
	if n := strings.Count(own.String(), "\n"); n > 2 {
		t.Errorf("%d lines in the supervisor's log for %d malformed packets, want at most 2:\n%.600s", n, bad, own.String())
	}
	if !strings.Contains(own.String(), "(2000 in all)") {
		t.Errorf("the count of malformed packets is not reported: %.300q", own.String())
	}
}

// TestDirectWorkerAccessRecordsDropped: a worker that writes its access
// log file itself has no access records to send on its channel; any it
// sends are dropped and counted, never written by the supervisor through
// a second description of that file. Its main log lines still go through.
func TestDirectWorkerAccessRecordsDropped(t *testing.T) {
	r := startLogReader(t, true)
	s, wc, done, main, access, own := r.s, r.wc, r.done, &r.main, &r.access, &r.own
	pkt := logframe.Append(nil, logframe.Access, []byte("forged record\n"))
	pkt = logframe.Append(pkt, logframe.Access, []byte("another\n"))
	pkt = logframe.Append(pkt, logframe.Main, []byte("main line\n"))
	if _, err := wc.Write(pkt); err != nil {
		t.Fatal(err)
	}
	wc.Close()
	<-done
	if access.Len() != 0 || !strings.Contains(main.String(), "main line") {
		t.Errorf("access target got %q, main %q", access.String(), main.String())
	}
	if n := s.LogDrops(); n != 2 {
		t.Errorf("LogDrops = %d, want 2", n)
	}
	if strings.Count(own.String(), "dropped") != 1 {
		t.Errorf("want one warning: %q", own.String())
	}
}
