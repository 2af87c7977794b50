package supervisor

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/logframe"
)

// workerLogFD is the worker's end of its log channel (see worker.Main).
const workerLogFD = 6

// Logs are where the supervisor writes what its workers log: their main
// log lines and their access records. Both writers must not block (a
// logtarget.Target queues and drops); Reopen reopens file targets on
// SIGHUP and the audit_reopen verb.
type Logs struct {
	Main   io.Writer
	Access io.Writer
	Reopen func() error // nil: nothing to reopen
	// AccessFile opens the access target's file once more, for the
	// workers to write it themselves (accessfile.go); nil when the
	// access target is not a file.
	AccessFile func() (*os.File, error)
	// AccessColored: the access records are read on a terminal
	// (access_logs_colored, and the access target is stdout).
	AccessColored bool
	// MainColored: the main log lines are coloured (log_colored, and
	// log_target is stdout); workers colour theirs too.
	MainColored bool
	// Dropped returns the records the targets dropped so far (queue full,
	// failed writes), for metrics; nil for none. A worker counts its own
	// drops (accesslog.Shipper.Dropped) and reports them in its log.
	Dropped func() uint64
}

// LogDrops returns how many log records the supervisor's targets dropped
// so far (see Logs.Dropped). Safe for concurrent use.
func (s *Supervisor) LogDrops() uint64 {
	n := s.strayAccess.Load()
	if s.logs.Dropped == nil {
		return n
	}
	return n + s.logs.Dropped()
}

// SetLogs sets the targets of the workers' logs; without it, both go to
// the supervisor's own log output. Call it before Run.
func (s *Supervisor) SetLogs(l Logs) { s.logs = l }

// logWriters returns the main and access writers in force.
func (s *Supervisor) logWriters() (main, access io.Writer) {
	main, access = s.logs.Main, s.logs.Access
	if main == nil {
		main = s.log.Out
	}
	if access == nil {
		access = main
	}
	return main, access
}

// reopenLogs reopens the file targets of the logs (logrotate).
// Every step is tried, whatever the others gave: the error joins
// theirs.
func (s *Supervisor) reopenLogs() error {
	if s.logs.Reopen == nil {
		return nil
	}
	err := s.logs.Reopen()
	var aerr error
	s.do(func(a *actor) { aerr = a.reopenAccessFile() })
	if err = errors.Join(err, aerr); err != nil {
		s.log.Errorf("reopening the log targets: %v", err)
		return err
	}
	return nil
}

// logChannel returns the two ends of a worker's log channel: a
// SOCK_SEQPACKET socketpair (one packet, one batch of records), the
// parent's end as a net.Conn, the child's as a file for ExtraFiles.
func logChannel() (parent net.Conn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	// Room for bursts: a worker's batches wait here while the reader
	// hands the previous ones to the targets' queues.
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	pf := os.NewFile(uintptr(fds[0]), "worker-log-parent")
	defer pf.Close()
	parent, err = net.FileConn(pf)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return parent, os.NewFile(uintptr(fds[1]), "worker-log-child"), nil
}

// startLogReader starts reading w's log channel (readWorkerLogs).
func (w *workerProc) startLogReader(s *Supervisor) {
	w.logsDone = make(chan struct{})
	direct := w.accessFile
	go func() {
		defer close(w.logsDone)
		s.readWorkerLogs(w.id, w.logs, &w.handedOver, direct)
	}()
}

// readWorkerLogs reads a worker's log channel until it closes, and hands
// each record to its target. Lines of the main log are written as they
// came (the worker formats them); a malformed packet has its remaining
// records skipped. The first malformed packet is reported, the others
// counted and their number reported at most once a minute and when the
// channel closes: a worker flooding it with bad packets does not flood the
// supervisor's own log. A read that fails once handedOver is set (the
// hand-over of a hot upgrade wakes it with a past deadline) returns
// leaving c open: its descriptor goes to the new supervisor, and a
// SOCK_SEQPACKET read never splits a packet, so none is lost or read
// twice.
//
// A worker that writes its access log file itself (direct) sends no access
// records: any it sends are dropped and counted (docs/observability.md:
// the file has one writer's description).
func (s *Supervisor) readWorkerLogs(id uint32, c net.Conn, handedOver *atomic.Bool, direct bool) {
	main, access := s.logWriters()
	buf := make([]byte, logframe.MaxPacket)
	// A stream target takes a packet's access records in one write (one
	// copy, one queue slot); others take them one by one.
	var runs recordRuns
	if rw, ok := access.(recordRunWriter); ok && rw.Stream() {
		runs.w = rw
	}
	malformed, unreported := 0, 0
	var reported time.Time
	report := func() {
		s.log.Warnf("worker %d: log channel: %d more malformed packets (%d in all), their records skipped", id, unreported, malformed)
		unreported, reported = 0, time.Now()
	}
	defer func() {
		if unreported > 0 {
			report()
		}
	}()
	for {
		n, err := c.Read(buf)
		if err != nil {
			if handedOver != nil && handedOver.Load() {
				return
			}
			c.Close()
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
				s.log.Warnf("worker %d: log channel: %v", id, err)
			}
			return
		}
		for p := buf[:n]; len(p) > 0; {
			kind, rec, rest, err := logframe.Next(p)
			if err != nil {
				if malformed++; malformed == 1 {
					s.log.Warnf("worker %d: log channel: %v: %d bytes skipped (further malformed packets are counted, reported once a minute)", id, err, len(p))
					reported = time.Now()
				} else if unreported++; time.Since(reported) >= time.Minute {
					report()
				}
				break
			}
			if kind == logframe.Access && direct {
				if s.strayAccess.Add(1) == 1 {
					s.log.Warnf("worker %d: access records on its log channel, though it writes its access log file: dropped (counted in the log drops)", id)
				}
			} else if kind == logframe.Access {
				if runs.w != nil {
					runs.add(rec)
				} else {
					access.Write(rec)
				}
			} else {
				runs.flush() // keeps the order where both share a target
				main.Write(rec)
			}
			p = rest
		}
		runs.flush()
	}
}

// recordRunWriter is a log target that takes several records at once
// (logtarget.Target).
type recordRunWriter interface {
	Stream() bool
	WriteRecords(b []byte, n int)
}

// recordRuns gathers a packet's access records for one WriteRecords.
type recordRuns struct {
	w   recordRunWriter
	buf []byte
	n   int
}

func (r *recordRuns) add(rec []byte) { r.buf, r.n = append(r.buf, rec...), r.n+1 }

func (r *recordRuns) flush() {
	if r.w != nil && r.n > 0 {
		r.w.WriteRecords(r.buf, r.n)
	}
	r.buf, r.n = r.buf[:0], 0
}
