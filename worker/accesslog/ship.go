package accesslog

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/proto/logframe"
)

// DefaultQueueLen bounds the records a worker holds for the supervisor.
const DefaultQueueLen = 8192

// DefaultReportEvery is how often a worker that dropped records says so.
const DefaultReportEvery = 5 * time.Second

// flushDelay is how long the shipper lets records gather after the first
// one of a batch: records reach the supervisor at most this late.
const flushDelay = 5 * time.Millisecond

// bufCap is the capacity of a pooled record buffer: enough for a record
// with a long target and user agent, grown (and kept) when not.
const bufCap = 1 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufCap); return &b }}

// item is one queued record.
type item struct {
	kind byte
	buf  *[]byte
}

// Shipper sends the worker's log records (main log lines and access
// records) to the supervisor over the log channel, in batches. Send never
// blocks: when the queue is full the record is dropped and counted, and
// Run reports the drops in the main log. Safe for concurrent use.
type Shipper struct {
	w      io.Writer
	queue  chan item
	report time.Duration
	who    string

	// Dropped counts the records dropped because the queue was full or
	// the channel failed; read it with Load (metrics).
	Dropped atomic.Uint64

	done   chan struct{}
	exited chan struct{} // closed when Run returns
	once   sync.Once
}

// NewShipper returns a shipper writing packets to w (the worker's end of
// the log channel), holding at most queueLen records (DefaultQueueLen when
// 0), reporting drops every report (DefaultReportEvery when 0) in lines
// that start with who. Call Run.
func NewShipper(w io.Writer, queueLen int, report time.Duration, who string) *Shipper {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	if report <= 0 {
		report = DefaultReportEvery
	}
	return &Shipper{w: w, queue: make(chan item, queueLen), report: report, who: who,
		done: make(chan struct{}), exited: make(chan struct{})}
}

// Send queues a copy of rec, or drops it (counted) when the queue is full
// or rec is larger than a packet. It reports whether rec was queued.
func (s *Shipper) Send(kind byte, rec []byte) bool {
	if len(rec) > logframe.MaxRecord {
		s.Dropped.Add(1)
		return false
	}
	p := bufPool.Get().(*[]byte)
	*p = append((*p)[:0], rec...)
	return s.enqueue(kind, p)
}

// enqueue queues the pooled buffer p, or drops it and gives it back.
func (s *Shipper) enqueue(kind byte, p *[]byte) bool {
	select {
	case s.queue <- item{kind, p}:
		return true
	default:
		s.Dropped.Add(1)
		putBuf(p)
		return false
	}
}

func putBuf(p *[]byte) {
	if cap(*p) <= 16*bufCap {
		*p = (*p)[:0]
		bufPool.Put(p)
	}
}

// MainLog returns a writer for the worker's main log (logrus): each Write
// is one line, shipped as a Main record.
func (s *Shipper) MainLog() io.Writer { return mainWriter{s} }

type mainWriter struct{ s *Shipper }

func (m mainWriter) Write(p []byte) (int, error) {
	m.s.Send(logframe.Main, p)
	return len(p), nil
}

// Run writes the queued records to the channel, as many per packet as fit,
// flushDelay after the first of each batch, until Close, which it lets
// write what is queued then; a failed write
// drops its packet (counted). It reports the drops of each period in a main
// log line.
func (s *Shipper) Run() {
	defer close(s.exited)
	packet := make([]byte, 0, logframe.MaxPacket)
	closing := false
	tick := time.NewTicker(s.report)
	defer tick.Stop()
	gather := time.NewTimer(flushDelay)
	defer gather.Stop()
	var reported uint64
	for {
		var it item
		select {
		case it = <-s.queue:
		case <-tick.C:
			if d := s.Dropped.Load(); d != reported {
				line := fmt.Sprintf("%s WARN  %s: log channel full: dropped %d log records in the last %v (%d in all)\n",
					time.Now().UTC().Format(time.RFC3339), s.who, d-reported, s.report, d)
				reported = d
				s.write(logframe.Append(packet[:0], logframe.Main, []byte(line)), 1)
			}
			continue
		case <-s.done:
			select {
			case it = <-s.queue:
				closing = true
			default:
				return
			}
		}
		if !closing {
			// Let a batch gather: one wake-up and one write per
			// flushDelay under load, instead of one per record.
			gather.Reset(flushDelay)
			select {
			case <-gather.C:
			case <-s.done:
				closing = true
			}
		}
		packet = logframe.Append(packet[:0], it.kind, *it.buf)
		putBuf(it.buf)
		n := 1
	batch:
		for {
			select {
			case it = <-s.queue:
				if len(packet)+logframe.Size(len(*it.buf)) > logframe.MaxPacket {
					s.write(packet, n)
					packet, n = packet[:0], 0
				}
				packet = logframe.Append(packet, it.kind, *it.buf)
				putBuf(it.buf)
				n++
			default:
				break batch
			}
		}
		s.write(packet, n)
		if closing && len(s.queue) == 0 {
			return
		}
	}
}

// write sends one packet of n records; a failure drops them.
func (s *Shipper) write(packet []byte, n int) {
	if _, err := s.w.Write(packet); err != nil {
		s.Dropped.Add(uint64(n))
	}
}

// closeWait bounds how long Close waits for Run to write what is queued.
const closeWait = time.Second

// Close stops Run after it wrote what is queued, waiting for that at most
// closeWait (a supervisor that does not read loses the rest).
func (s *Shipper) Close() {
	s.once.Do(func() { close(s.done) })
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
	}
}

// Logger encodes access records and ships them. A nil *Logger logs
// nothing, at no cost.
//
// A Gated logger follows the main log's level, as upstream's access log
// does when it shares the main target: a record of a success is written at
// info level, one of a failure (Record.Failure) at error level. An
// ungated logger (a dedicated access_logs_target) writes every record.
type Logger struct {
	Enc   Encoder
	Ship  *Shipper
	Gated bool

	// level is the main log's level (logrus.Level); read only when Gated.
	level atomic.Uint32
}

// SetLevel sets the main log level a Gated logger follows.
func (l *Logger) SetLevel(lvl logrus.Level) {
	if l != nil {
		l.level.Store(uint32(lvl))
	}
}

// Wants reports whether a record of a failure (or of a success) would be
// written: callers may skip building one that would not.
func (l *Logger) Wants(failure bool) bool {
	if l == nil {
		return false
	}
	if !l.Gated {
		return true
	}
	if failure {
		return logrus.Level(l.level.Load()) >= logrus.ErrorLevel
	}
	return logrus.Level(l.level.Load()) >= logrus.InfoLevel
}

// Log encodes r into a pooled buffer and queues it, unless the level
// filters it out: it never blocks and, in steady state, does not allocate.
func (l *Logger) Log(r *Record) {
	if !l.Wants(r.Failure()) {
		return
	}
	p := bufPool.Get().(*[]byte)
	*p = l.Enc.Append((*p)[:0], r)
	if len(*p) > logframe.MaxRecord {
		l.Ship.Dropped.Add(1)
		putBuf(p)
		return
	}
	l.Ship.enqueue(logframe.Access, p)
}
