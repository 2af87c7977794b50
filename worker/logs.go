package worker

import (
	"fmt"
	"net"
	"os"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/logmask"
)

// workerLogs are a worker's logs: its main log lines and access records
// go to the supervisor over the log channel (fd logFD, a SOCK_SEQPACKET
// socket), which writes them to the configured targets. The worker opens
// nothing to log, before or after confinement (docs/observability.md).
type workerLogs struct {
	ship   *accesslog.Shipper
	access *accesslog.Logger
}

// openLogs starts shipping on the log channel. gated: the access records
// share the main target and follow its level (accesslog.Logger.Gated).
func openLogs(id uint32, format, query string, colored, gated bool) (*workerLogs, error) {
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
	ship := accesslog.NewShipper(conn, 0, 0, fmt.Sprintf("worker %d", id))
	go ship.Run()
	enc := accesslog.Encoder{Format: f, Query: q, Colored: colored && f == accesslog.Ascii,
		Tag: fmt.Sprintf("WRK-%02d", id), PID: os.Getpid()}
	return &workerLogs{ship: ship, access: &accesslog.Logger{Enc: enc, Ship: ship, Gated: gated}}, nil
}

// close stops shipping; what is still queued is lost.
func (l *workerLogs) close() { l.ship.Close() }
