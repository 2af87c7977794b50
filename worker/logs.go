package worker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/logframe"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/logmask"
)

// workerLogs are a worker's logs. Its main log lines go to the supervisor
// over the log channel (fd logFD, a SOCK_SEQPACKET socket), which writes
// them to the configured target. Its access records go the same way,
// unless their target is a dedicated regular file: then the supervisor
// opens that file and
// passes it at start (fd accessFD) and again over the log channel
// whenever the log files reopen, and the worker appends its records to it
// itself. The worker opens nothing to log, before or after confinement
// (docs/observability.md).
type workerLogs struct {
	ship   *accesslog.Shipper
	access *accesslog.Logger
	file   *accesslog.File // nil unless the worker writes its access file
	fship  *accesslog.Shipper
	conn   *net.UnixConn // the log channel
}

// openLogs starts shipping on the log channel. gated: the access records
// share the main target and follow its level (accesslog.Logger.Gated).
// direct: fd accessFD is the access log file, written by the worker.
func openLogs(id uint32, format, query string, colored, gated, direct bool) (*workerLogs, error) {
	f, err := accesslog.ParseFormat(format)
	if err != nil {
		return nil, fmt.Errorf("--access-log-format: %w", err)
	}
	q, err := logmask.ParseQueryMode(query)
	if err != nil {
		return nil, fmt.Errorf("--access-log-query: %w", err)
	}
	lf := os.NewFile(logFD, "log-channel")
	conn, err := net.FileConn(lf)
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("log channel fd %d: %w", logFD, err)
	}
	who := fmt.Sprintf("worker %d", id)
	ship := accesslog.NewShipper(conn, 0, 0, who)
	go ship.Run()
	l := &workerLogs{ship: ship}
	recs := ship
	if direct {
		l.file = accesslog.NewFile(os.NewFile(accessFD, "access-log"))
		l.file.Lines = f != accesslog.Protobuf
		l.fship = accesslog.NewFileShipper(l.file, 0, 0, who, ship)
		go l.fship.Run()
		recs = l.fship
		uc, ok := conn.(*net.UnixConn)
		if !ok {
			return nil, fmt.Errorf("log channel fd %d is not a unix socket", logFD)
		}
		l.conn = uc
	}
	enc := accesslog.Encoder{Format: f, Query: q, Colored: colored && f == accesslog.Ascii,
		Tag: fmt.Sprintf("WRK-%02d", id), PID: os.Getpid()}
	l.access = &accesslog.Logger{Enc: enc, Ship: recs, Gated: gated}
	return l, nil
}

// receiveAccessFiles reads the log channel, in its own goroutine, for the
// descriptors the supervisor sends when the log files reopen, and swaps
// each into the access file, until the channel closes. Anything else is
// reported and dropped (its descriptors closed). Without an access file
// to write it does nothing.
func (l *workerLogs) receiveAccessFiles(log logrus.FieldLogger) {
	if l.file != nil {
		go receiveAccessFiles(l.conn, l.file, log)
	}
}

func receiveAccessFiles(c *net.UnixConn, file *accesslog.File, log logrus.FieldLogger) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 && oobn == 0 {
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warnf("log channel: %v: reopened access log files can no longer arrive", err)
			}
			return
		}
		fds, perr := rights(oob[:oobn])
		if n == 1 && buf[0] == logframe.AccessFile && len(fds) == 1 && perr == nil {
			file.Swap(os.NewFile(uintptr(fds[0]), "access-log"))
			continue
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		log.Warnf("log channel: unexpected message from the supervisor (%d bytes, %d descriptors, control error %v): ignored", n, len(fds), perr)
	}
}

// rights returns the descriptors SCM_RIGHTS control messages carry (those
// read before an error too, for the caller to close).
func rights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// dropped returns the log records dropped so far, main and access.
func (l *workerLogs) dropped() uint64 {
	n := l.ship.Dropped.Load()
	if l.fship != nil {
		n += l.fship.Dropped.Load()
	}
	return n
}

// close stops shipping; what is still queued is lost. The access file is
// left to the process's exit: closing it would wait for a write that a
// hung file system may never finish.
func (l *workerLogs) close() {
	if l.fship != nil {
		l.fship.Close()
	}
	l.ship.Close()
}
