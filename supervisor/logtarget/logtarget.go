// Package logtarget writes the supervisor's logs (its main log, and the
// main log lines and access records its workers send it) to their targets:
// stdout, stderr, a file, or a udp://, tcp:// or unix:// peer. Writing never
// blocks the caller: records wait in a bounded queue, and those that do
// not fit are dropped, counted and reported.
package logtarget

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultQueueLen     = 16384
	DefaultReportEvery  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	batchSize           = 64 << 10
)

// Options tune a Target; zero fields take the defaults.
type Options struct {
	QueueLen     int           // records held before dropping
	ReportEvery  time.Duration // how often drops are reported
	WriteTimeout time.Duration // a stream peer that takes longer to accept a batch is reconnected
	MinBackoff   time.Duration // first wait before reconnecting (tcp://, unix://)
	MaxBackoff   time.Duration // longest wait between reconnections
	// Report receives a warning line: drops, lost connections. Nil
	// writes to stderr.
	Report func(msg string)
	// OpenFile opens a file target for appending; nil is os.OpenFile
	// with O_APPEND|O_CREATE, mode 0640. A FIFO or a device must come
	// back pollable (non-blocking), as os.OpenFile and
	// audit.OpenAppendFile open them, so that its writes honour
	// WriteTimeout: a blocking write to a FIFO whose reader stopped would
	// hold the writer, and Reopen (SIGHUP) and Close with it, for ever.
	OpenFile func(path string) (*os.File, error)
}

func (o *Options) setDefaults() {
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = DefaultReportEvery
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Report == nil {
		o.Report = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
	}
	if o.OpenFile == nil {
		o.OpenFile = func(path string) (*os.File, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscallCloexec, 0o640)
		}
	}
}

// kind is the sort of target.
type kind uint8

const (
	kindStdout kind = iota
	kindStderr
	kindFile
	kindUDP
	kindTCP
	kindUnix
)

// Target is one log target. Write, Reopen, Dropped and Close are safe for
// concurrent use.
type Target struct {
	name string // as configured
	kind kind
	addr string // host:port or socket path; file path for files
	opt  Options

	queue chan run
	// queued counts the records in queue, bounded by Options.QueueLen.
	queued atomic.Int64
	// dropped counts the records lost: queue full, or a write that failed.
	dropped atomic.Uint64
	// lastErr is the last write error (a full disk, a read-only file
	// system, a datagram too large), said in the next drop report.
	lastErr atomic.Pointer[error]

	reopen chan chan error // files: reopen requests, served by run
	done   chan struct{}   // closed by Close
	exited chan struct{}   // closed when run returns
	once   sync.Once

	// Owned by run.
	w      io.Writer
	closer io.Closer
	conn   net.Conn // tcp:// and unix:// and udp://
}

// parse checks a target without opening it, and returns its kind and
// address.
func parse(target string) (kind, string, error) {
	t := strings.TrimSpace(target)
	switch {
	case t == "" || t == "stdout":
		return kindStdout, "", nil
	case t == "stderr":
		return kindStderr, "", nil
	case strings.HasPrefix(t, "udp://"), strings.HasPrefix(t, "tcp://"):
		addr := t[6:]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return 0, "", fmt.Errorf("log target %s: %w", t, err)
		}
		if strings.HasPrefix(t, "udp://") {
			return kindUDP, addr, nil
		}
		return kindTCP, addr, nil
	case strings.HasPrefix(t, "unix://"):
		if t[7:] == "" {
			return 0, "", fmt.Errorf("log target %s: no socket path", t)
		}
		return kindUnix, t[7:], nil
	case strings.HasPrefix(t, "file://"):
		if t[7:] == "" {
			return 0, "", fmt.Errorf("log target %s: no file path", t)
		}
		return kindFile, t[7:], nil
	case !strings.Contains(t, "://"):
		return kindFile, t, nil
	}
	return 0, "", fmt.Errorf("invalid log target %q: want stdout, stderr, udp://host:port, tcp://host:port, unix://path or file://path", t)
}

// FilePath returns the path of a file target (file://path or a bare
// path); ok is false for any other target, and for an invalid one.
func FilePath(target string) (path string, ok bool) {
	k, addr, err := parse(target)
	if err != nil || k != kindFile {
		return "", false
	}
	return addr, true
}

// Open opens target (stdout, stderr, file://path or a bare path,
// udp://host:port, tcp://host:port, unix://path — a datagram socket, as
// upstream's) and starts its writer. A file is opened at once (its error
// returned); a network peer is connected by the writer, which reconnects
// with backoff whenever the connection fails.
func Open(target string, opt Options) (*Target, error) {
	k, addr, err := parse(target)
	if err != nil {
		return nil, err
	}
	opt.setDefaults()
	t := &Target{name: strings.TrimSpace(target), kind: k, addr: addr, opt: opt,
		queue: make(chan run, opt.QueueLen), reopen: make(chan chan error),
		done: make(chan struct{}), exited: make(chan struct{})}
	switch k {
	case kindStdout:
		t.w = os.Stdout
	case kindStderr:
		t.w = os.Stderr
	case kindFile:
		f, err := t.openFile()
		if err != nil {
			return nil, err
		}
		t.w, t.closer = f, f
	}
	go t.run()
	go t.reportDrops()
	return t, nil
}

func (t *Target) String() string { return t.name }

// Dropped returns how many records were lost so far: dropped because the
// queue was full, or lost in a write that failed (metrics read it).
func (t *Target) Dropped() uint64 { return t.dropped.Load() }

// run is n records, one after another, owned by the queue: b is *p's
// bytes, a pooled buffer the writer gives back (free) once written.
type run struct {
	b []byte
	n int
	p *[]byte
}

// Run buffers are pooled by size: main log lines and single records in
// small ones, a worker's batches in large ones, so that the supervisor
// makes no garbage per record (its collections would scan the state).
const smallRun = 4 << 10

var smallRuns, largeRuns sync.Pool

// newRun returns a run holding a copy of p.
func newRun(p []byte, n int) run {
	pool, size := &smallRuns, smallRun
	if len(p) > smallRun {
		pool, size = &largeRuns, batchSize*2
	}
	bp, _ := pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, max(size, len(p)))
		bp = &b
	}
	*bp = append((*bp)[:0], p...)
	return run{*bp, n, bp}
}

// free gives r's buffer back; r must not be used afterwards.
func (r run) free() {
	c := cap(*r.p)
	switch {
	case c == smallRun:
		smallRuns.Put(r.p)
	case c >= batchSize*2 && c <= 4*batchSize:
		largeRuns.Put(r.p)
	}
}

// Write queues a copy of p as one record (a log line, or an encoded
// access record), or drops it when the queue is full. It never blocks and
// never fails: it always returns len(p), nil (logrus needs an io.Writer).
func (t *Target) Write(p []byte) (int, error) {
	t.enqueue(p, 1)
	return len(p), nil
}

// Stream reports whether the target is a byte stream (stdout, stderr, a
// file, tcp://), where records written one after another stay apart by
// their own delimiters, so WriteRecords may take several at once.
func (t *Target) Stream() bool { return !t.datagram() }

// WriteRecords queues a copy of b, n records one after another, as Write
// would queue each of them: kept or dropped together. Only for a Stream
// target (a datagram target sends one record per datagram: use Write).
// A worker's batch costs one copy and one queue slot this way.
func (t *Target) WriteRecords(b []byte, n int) {
	if n > 0 {
		t.enqueue(b, n)
	}
}

func (t *Target) enqueue(p []byte, n int) {
	select {
	case <-t.done:
		t.dropped.Add(uint64(n))
		return
	default:
	}
	if t.queued.Add(int64(n)) > int64(t.opt.QueueLen) {
		t.queued.Add(-int64(n))
		t.dropped.Add(uint64(n))
		return
	}
	select {
	case t.queue <- newRun(p, n):
	default:
		t.queued.Add(-int64(n))
		t.dropped.Add(uint64(n))
	}
}

// Reopen reopens a file target (logrotate: SIGHUP, audit reopen); other
// targets have nothing to reopen. It returns once the records queued
// before it are written to the old file.
func (t *Target) Reopen() error {
	if t.kind != kindFile {
		return nil
	}
	done := make(chan error, 1)
	select {
	case t.reopen <- done:
		return <-done
	case <-t.exited:
		return errors.New("log target " + t.name + ": closed")
	}
}

// Close writes what is queued (waiting at most a write timeout), then
// stops the writer and closes the target's file or connection. It returns
// after two write timeouts (the write in progress, then the drain) even
// if the writer has not stopped: a write to stdout or stderr has no
// deadline (their descriptors are shared with the parent, never made
// non-blocking), and a reader that stopped (a full pipe) holds it for
// ever; the process exiting must not wait for it. Such a writer is left
// behind, its output open.
func (t *Target) Close() {
	t.once.Do(func() { close(t.done) })
	wait := time.NewTimer(2 * t.opt.WriteTimeout)
	defer wait.Stop()
	select {
	case <-t.exited:
	case <-wait.C:
		t.opt.Report(fmt.Sprintf("log target %s: a write has not returned within %v: closing without it, what is queued is lost",
			t.name, 2*t.opt.WriteTimeout))
	}
}

// reportDrops reports the drops of each period until Close, with the
// last write error when one failed since the last report.
func (t *Target) reportDrops() {
	tick := time.NewTicker(t.opt.ReportEvery)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-tick.C:
		case <-t.done:
			return
		}
		if d := t.dropped.Load(); d != reported {
			cause := "the target does not keep up or is unreachable"
			if e := t.lastErr.Swap(nil); e != nil {
				cause = fmt.Sprintf("last write error: %v", *e)
			}
			t.opt.Report(fmt.Sprintf("log target %s: dropped %d records in the last %v (%d in all): %s",
				t.name, d-reported, t.opt.ReportEvery, d, cause))
			reported = d
		}
	}
}
