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

// maxPackets bounds the packet buffers a shipper holds (filling, full and
// being written): with logframe.MaxPacket, 1 MiB per worker at most.
const maxPackets = 8

// packetCap is a packet buffer's capacity: a packet is sent once it holds
// more than logframe.MaxPacket - packetSlack bytes, so that the record
// that crosses the line is usually encoded without growing the buffer.
const (
	packetSlack = 16 << 10
	packetCap   = logframe.MaxPacket + packetSlack
)

// Shipper sends the worker's log records (main log lines and access
// records) to the supervisor over the log channel, in batches: records
// are encoded straight into the packet being filled (no copy, no queue
// operation per record), and Run writes the packets flushDelay after the
// first record of each batch. Adding a record never blocks: when more
// than the queue length are waiting, or every packet buffer is full, the
// record is dropped and counted, and Run reports the drops in the main
// log. Safe for concurrent use.
type Shipper struct {
	w      io.Writer
	limit  int // records held at most
	report time.Duration
	who    string
	// reportTo is set on a file shipper (NewFileShipper), which writes
	// records as they are, with no logframe framing (raw): the main log's
	// shipper, which reports its drops from its own Run, where a write
	// blocked here does not hold them up.
	reportTo *Shipper
	watched  []*Shipper // raw shippers whose drops Run reports; under mu
	reported uint64     // drops said so far; only the reporting Run

	// Dropped counts the records dropped because the queue was full or
	// the channel failed; read it with Load (metrics).
	Dropped atomic.Uint64
	// lastErr is the last write error, or a record too large, said in
	// the next drop report.
	lastErr atomic.Pointer[error]

	mu   sync.Mutex
	cur  []byte   // the packet being filled; nil before its first record
	curN int      // records in cur
	full []packet // packets ready, oldest first
	free [][]byte // emptied packet buffers
	bufs int      // packet buffers allocated
	held int      // records in cur and full
	kick chan struct{}

	done   chan struct{}
	exited chan struct{} // closed when Run returns
	once   sync.Once
}

// packet is a full packet and the number of records in it.
type packet struct {
	b []byte
	n int
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
	return &Shipper{w: w, limit: queueLen, report: report, who: who, kick: make(chan struct{}, 1),
		done: make(chan struct{}), exited: make(chan struct{})}
}

// NewFileShipper returns a shipper for a worker that writes its access
// records itself, to w (a file opened for appending): records are written
// as they are, a batch of whole records per Write, with no framing; each
// record must end its own line (or frame, for protobuf). The drops are
// reported on main, the shipper of the worker's main log. Call Run.
func NewFileShipper(w io.Writer, queueLen int, report time.Duration, who string, main *Shipper) *Shipper {
	s := NewShipper(w, queueLen, report, who)
	s.reportTo = main
	main.mu.Lock()
	main.watched = append(main.watched, s)
	main.mu.Unlock()
	return s
}

// raw reports whether s writes records unframed (NewFileShipper).
func (s *Shipper) raw() bool { return s.reportTo != nil }

// Send queues a copy of rec, or drops it (counted) when the queue is full
// or rec is larger than a packet. It reports whether rec was queued.
func (s *Shipper) Send(kind byte, rec []byte) bool {
	if len(rec) > logframe.MaxRecord {
		s.tooLarge(len(rec))
		s.Dropped.Add(1)
		return false
	}
	s.mu.Lock()
	start, ok := s.begin(kind)
	if !ok {
		return s.dropLocked()
	}
	s.cur = append(s.cur, rec...)
	return s.end(start)
}

// begin starts a record of kind at the end of the packet being filled,
// with s.mu held, and returns where it begins in s.cur; false (s.mu still
// held) when the queue or the buffers are full.
func (s *Shipper) begin(kind byte) (int, bool) {
	if s.held >= s.limit {
		return 0, false
	}
	if s.cur == nil {
		if s.cur = s.buffer(); s.cur == nil {
			return 0, false
		}
	}
	if s.raw() {
		return len(s.cur), true
	}
	cur, start := logframe.Reserve(s.cur, kind)
	s.cur = cur
	return start, true
}

// end seals the record begin started at start, whose bytes were appended
// to s.cur, sends the packet on to Run when it is full, and releases
// s.mu. A record that cannot be sealed or moved is dropped (counted).
func (s *Shipper) end(start int) bool {
	if s.raw() {
		if n := len(s.cur) - start; n > logframe.MaxRecord {
			s.cur = s.cur[:start]
			s.tooLarge(n)
			return s.dropLocked()
		}
	} else if n, err := logframe.Seal(s.cur, start); err != nil {
		s.tooLarge(n)
		s.cur = s.cur[:start]
		return s.dropLocked()
	}
	if len(s.cur) > logframe.MaxPacket-packetSlack {
		pkt, rec := s.cur, s.cur[start:]
		if len(pkt) > logframe.MaxPacket {
			// The record does not fit this packet: it opens the next.
			next := s.buffer()
			if next == nil {
				s.cur = s.cur[:start]
				return s.dropLocked()
			}
			s.cur = append(next, rec...)
			s.full = append(s.full, packet{pkt[:start], s.curN})
			s.curN = 0
		} else {
			s.full = append(s.full, packet{pkt, s.curN + 1})
			s.cur, s.curN = nil, -1
		}
	}
	s.curN++
	s.held++
	first := s.held == 1
	s.mu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// tooLarge notes, for the next drop report, a record of n bytes dropped
// for being larger than a packet carries: the channel is not to blame.
func (s *Shipper) tooLarge(n int) {
	err := fmt.Errorf("a record of %d bytes, larger than the %d a log packet carries", n, logframe.MaxRecord)
	s.lastErr.Store(&err)
}

// dropLocked releases s.mu and counts a dropped record; it returns false.
func (s *Shipper) dropLocked() bool {
	s.mu.Unlock()
	s.Dropped.Add(1)
	return false
}

// buffer returns an empty packet buffer, or nil when all maxPackets are
// in use. s.mu is held.
func (s *Shipper) buffer() []byte {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b
	}
	if s.bufs == maxPackets {
		return nil
	}
	s.bufs++
	return make([]byte, 0, packetCap)
}

// take returns the oldest packet waiting, the one being filled when no
// other is, or n 0 when nothing waits.
func (s *Shipper) take() packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p packet
	switch {
	case len(s.full) > 0:
		p = s.full[0]
		s.full = append(s.full[:0], s.full[1:]...)
	case s.curN > 0:
		p = packet{s.cur, s.curN}
		s.cur, s.curN = nil, 0
	}
	s.held -= p.n
	return p
}

// recycle gives back a written packet's buffer.
func (s *Shipper) recycle(b []byte) {
	s.mu.Lock()
	if cap(b) <= 2*packetCap {
		s.free = append(s.free, b[:0])
	} else {
		s.bufs-- // grown by a record larger than the slack: let it go
	}
	s.mu.Unlock()
}

// MainLog returns a writer for the worker's main log (logrus): each Write
// is one line, shipped as a Main record.
func (s *Shipper) MainLog() io.Writer { return mainWriter{s} }

type mainWriter struct{ s *Shipper }

func (m mainWriter) Write(p []byte) (int, error) {
	m.s.Send(logframe.Main, p)
	return len(p), nil
}

// Run writes the packets, flushDelay after the first record of each
// batch, until Close, which it lets write what is held then; a failed
// write drops its packet (counted). It reports the drops of each period
// in a main log line.
func (s *Shipper) Run() {
	defer close(s.exited)
	tick := time.NewTicker(s.report)
	defer tick.Stop()
	gather := time.NewTimer(flushDelay)
	defer gather.Stop()
	closing := false
	for !closing {
		select {
		case <-s.kick:
			// Let a batch gather: one wake-up and one write per
			// flushDelay under load, instead of one per record.
			gather.Reset(flushDelay)
			select {
			case <-gather.C:
			case <-s.done:
				closing = true
			}
		case <-tick.C:
			if s.reportTo == nil {
				s.mu.Lock()
				watched := s.watched
				s.mu.Unlock()
				s.reportDrops(s)
				for _, w := range watched {
					w.reportDrops(s)
				}
			}
			continue
		case <-s.done:
			closing = true
		}
		for p := s.take(); p.n > 0; p = s.take() {
			s.write(p.b, p.n)
			s.recycle(p.b)
		}
	}
}

// reportDrops sends on to, the main log's shipper, a line saying how many
// records s dropped since the last one, and the last write error. Only
// to's Run calls it.
func (s *Shipper) reportDrops(to *Shipper) {
	d := s.Dropped.Load()
	if d == s.reported {
		return
	}
	what := "log channel full"
	if s.raw() {
		what = "access log file slow or failing"
	}
	cause := ""
	if e := s.lastErr.Swap(nil); e != nil {
		cause = fmt.Sprintf("; last error: %v", *e)
		if !s.raw() {
			what = "log channel" // not only full: failing, or a record too large
		}
	}
	line := fmt.Sprintf("%s WARN  %s: %s: dropped %d log records in the last %v (%d in all)%s\n",
		time.Now().UTC().Format(time.RFC3339), s.who, what, d-s.reported, to.report, d, cause)
	s.reported = d
	to.Send(logframe.Main, []byte(line))
}

// write sends one packet of n records; a failure drops them.
func (s *Shipper) write(packet []byte, n int) {
	if _, err := s.w.Write(packet); err != nil {
		s.lastErr.Store(&err)
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

// Log encodes r into the packet being filled, unless the level filters it
// out: it never blocks and, in steady state, does not allocate.
func (l *Logger) Log(r *Record) {
	if !l.Wants(r.Failure()) {
		return
	}
	s := l.Ship
	s.mu.Lock()
	start, ok := s.begin(logframe.Access)
	if !ok {
		s.dropLocked()
		return
	}
	s.cur = l.Enc.Append(s.cur, r)
	s.end(start)
}
