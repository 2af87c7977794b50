package h2

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Options carries what a Conn needs besides limits; the zero value is valid.
type Options struct {
	// Now is the clock for flood windows and stream activity; nil means
	// the connection's coarse clock (Conn.now). Socket deadlines and
	// idle reaping always use the wall clock.
	Now func() time.Time
	// Stats receives counters; may be nil.
	Stats *Stats
}

// Conn is one server-side HTTP/2 connection. Its reader goroutine (the one
// calling Serve) decodes frames and owns the HPACK decoder; one writer
// goroutine is the only writer to the socket; each stream's Handler runs in
// its own goroutine. Shared state is guarded by mu.
type Conn struct {
	nc    net.Conn
	lim   Limits
	h     Handler
	stats *Stats
	// resetObs and malformedObs are h when it is a ResetObserver, a
	// MalformedObserver.
	resetObs     ResetObserver
	malformedObs MalformedObserver

	// The connection's coarse clock (now): the time of the latest read
	// from the socket, flush or reap, as an offset from base (monotonic).
	// Stream activity and flood windows read it instead of the clock.
	base  time.Time
	clock atomic.Int64
	nowFn func() time.Time // Options.Now (tests), instead of the coarse clock

	// Reader-only.
	// br is the read buffer (buffers.go): nil while the reader waits
	// for the peer's next bytes through iw, or once it is done.
	br  *bufio.Reader
	iw  IdleWaiter // nc, when it is one
	rfr *http2.Framer
	// rfrBig: rfr has read a frame over maxKeptFrame, and so keeps a
	// buffer that large; rfrMore: the last frame read was a DATA frame
	// that large which did not end its stream (more are likely to
	// come). See peek.
	rfrBig, rfrMore bool
	dec             *hpack.Decoder
	maxStr          uint64 // the decoder's string length limit
	hb              headerBlock
	rdlSet          time.Time
	stopReading     atomic.Bool
	// quiet: the client sent GOAWAY and no stream is left: each wait for
	// a frame lasts peerGoAwayQuiet at most, then the connection ends.
	quiet      atomic.Bool
	afterFrame func() // tests: called by the reader after each frame it processed

	// Writer-only (and only under mu, which the writer holds while it
	// builds a batch).
	wfr     *http2.Framer
	wbuf    batchBuf
	hbuf    []byte // the header block being encoded (writeHeaderBlock)
	wdlSet  time.Time
	closing atomic.Bool

	mu         sync.Mutex
	wakeWriter sync.Cond
	writerDone chan struct{}
	dead       bool // torn down: streams fail, writer exits
	exitWriter bool // writer: flush control frames, then exit
	writing    bool // a batch is being written (writer, or a handler inline): wbuf is taken
	streams    map[uint32]*Stream
	peak       int
	ready      []*Stream
	readyHead  int
	ctrl       []ctrlFrame
	ctrlFull   bool
	recent     [32]uint32 // streams we reset lately: late frames are ignored
	recentWin  [32]int64  // for each of recent, the DATA bytes the peer may still send on it (its window at the reset)
	recentPos  int
	// ended: streams closed lately by END_STREAM both ways, no reset: a
	// DATA frame on one is a connection error STREAM_CLOSED (RFC 9113
	// §5.1); on a stream forgotten since, a stream error.
	ended idRing
	// peerReset: streams the peer reset lately. A frame on one but
	// PRIORITY or RST_STREAM is a stream error STREAM_CLOSED (§5.1): the
	// peer itself closed it, so none of its frames can be late.
	peerReset idRing

	maxClientID    uint32
	skipped        [4][2]uint32 // the last ranges of client ids a new stream skipped (never opened), first and last
	skippedPos     int
	handlers       int
	busyRefused    int // streams refused since a handler last returned, handlers being at the limit
	shutdown       bool
	ourShutdown    bool   // Shutdown was called (not only the client's GOAWAY)
	goawayID       uint32 // the last stream id of the GOAWAY sent; maxStreamID while only the advisory one went
	goawayFinal    bool   // the GOAWAY naming the last stream processed was sent (see shutdownLocked)
	shutdownTimer  *time.Timer
	finalTimer     *time.Timer // sends the final GOAWAY if our PING's ACK is late
	reapTimer      *time.Timer
	lingerTimer    *time.Timer
	lingering      []uint32 // streams whose response is complete while the peer still sends (lingerLocked)
	sendWindow     int64
	peerInitWindow int64
	peerMaxFrame   int
	peerTableDirty bool // the peer changed SETTINGS_HEADER_TABLE_SIZE: the next block says our table size (0)
	recvWindow     int64
	recvUnacked    int64
	unreturned     int64 // DATA bytes sent whose credit the peer has not returned
	// outQueued is the body bytes queued on all streams, not sent yet:
	// Stream.Room keeps it within sendWindow, so that streams stalled on
	// the connection window hold no output buffer beyond it.
	outQueued int64
	// streamUnreturned is the same for stream-level credit, summed over
	// all streams (closed ones included: a peer may return credit for a
	// stream that has just ended): stream WINDOW_UPDATEs granting more
	// count toward the same flood window as stream 0's, as PRIORITY
	// frames do.
	streamUnreturned int64
	hbDeadline       time.Time // a header block begun must end by then (HeaderTimeout); zero: none open

	rstWin, pingWin, settingsWin, emptyWin, wu0Win, priWin windowCounter
	glitchWin                                              windowCounter
	rstTotal, earlyCancel, emitted                         uint64
	pingTotal, settingsTotal                               uint64 // PING and SETTINGS frames received, ACKs aside
	// settingsAcksOwed and pingAcksOwed count the SETTINGS and PING
	// frames we sent that the peer has not acknowledged: an ACK
	// answering one of them is not counted toward the flood windows.
	settingsAcksOwed, pingAcksOwed uint32
}

// headerBlock is the header block being received; the HPACK decoder emits
// into it.
type headerBlock struct {
	c         *Conn
	streamID  uint32
	endStream bool
	prioSelf  bool
	// ignore: the block is on a stream we reset (onHeaders): decoded for
	// the HPACK state, then dropped.
	ignore bool
	// trailers: the stream was open when the block's HEADERS came. If it
	// is gone once the block is decoded (its handler finished meanwhile),
	// the block is for a closed stream, not a new request.
	trailers bool
	frames   uint32
	bytes    uint32
	fields   uint32
	listSize uint32
	tooBig   string     // why the decoded list is refused, "" if not
	scan     updateScan // finds a table size update after a field (hpackdec.go)
	arena    []byte
	refs     []fieldRef
	list     []HeaderField
	// part is the start of a field representation the last fragment
	// cut, not given to the decoder yet (decodeFragment).
	part []byte
}

func (hb *headerBlock) start(id uint32, end, prioSelf, trailers bool) {
	hb.streamID, hb.endStream, hb.prioSelf, hb.trailers = id, end, prioSelf, trailers
	hb.frames, hb.bytes, hb.fields, hb.listSize, hb.tooBig = 0, 0, 0, 0, ""
	hb.scan = updateScan{}
	hb.arena, hb.refs, hb.list, hb.part = hb.arena[:0], hb.refs[:0], hb.list[:0], hb.part[:0]
}

// Bounds on the arrays of a header block (headerBlock, and a stream's
// request head and trailers) kept once the block is done: an ordinary
// request's head fits them. Larger arrays are left to the garbage
// collector, not kept by an idle connection nor passed to its next
// request, or to another connection's, through the stream pool.
const (
	keptArena  = 4 << 10 // bytes of names and values
	keptFields = 32      // fields
)

// shrink drops the block's arrays that are over keptArena and keptFields,
// once the block is done: the stream took the block's own (endHeaderBlock)
// and left its previous ones, or the block was refused or ignored. The
// decoder forgets its last fragment first, which may lie in part.
func (hb *headerBlock) shrink() {
	if cap(hb.part) > keptArena {
		hb.c.unpinDecoder()
		hb.part = nil
	}
	if cap(hb.arena) > keptArena {
		hb.arena = nil
	}
	if cap(hb.refs) > keptFields {
		hb.refs = nil
	}
	if cap(hb.list) > keptFields {
		hb.list = nil
	}
}

func (hb *headerBlock) emit(f hpack.HeaderField) {
	hb.fields++
	hb.listSize += uint32(len(f.Name) + len(f.Value) + 32)
	switch {
	case hb.tooBig != "":
		return
	case hb.fields > hb.c.lim.MaxHeaderFields:
		hb.tooBig = "too many header fields"
		return
	case hb.listSize > hb.c.lim.MaxHeaderListSize:
		hb.tooBig = "header list too large (HPACK bomb)"
		return
	}
	off := len(hb.arena)
	hb.arena = append(hb.arena, f.Name...)
	hb.arena = append(hb.arena, f.Value...)
	hb.refs = append(hb.refs, fieldRef{off: uint32(off), nlen: uint32(len(f.Name)), vlen: uint32(len(f.Value))})
}

type ctrlKind uint8

const (
	cSettings ctrlKind = iota
	cSettingsAck
	cPingAck
	cPing
	cRST
	cWindowUpdate
	cGoAway
)

type ctrlFrame struct {
	kind   ctrlKind
	stream uint32
	val    uint32
	data   [8]byte
}

// keptCtrl bounds the control frame queue a connection keeps once it is
// written: a backlog of up to maxCtrlQueue frames (a peer that does not
// read while it sends PINGs, SETTINGS, frames we reset streams for) grew
// it, and an idle connection kept it, 20 KiB; an ordinary connection's
// burst (acknowledgements, a WINDOW_UPDATE per stream) fits.
const keptCtrl = 64

const (
	maxCtrlQueue = 1024
	batchBytes   = 64 << 10
	lingerTime   = time.Second
	lingerBytes  = 1 << 20
)

// NewConn prepares a connection for Serve. nc must have completed its TLS
// handshake (ALPN "h2") or be a cleartext prior-knowledge connection; the
// client preface has not been read. opt may be nil.
func NewConn(nc net.Conn, lim Limits, h Handler, opt *Options) *Conn {
	if opt == nil {
		opt = &Options{}
	}
	c := &Conn{
		nc:             nc,
		lim:            lim.withDefaults(),
		h:              h,
		nowFn:          opt.Now,
		stats:          opt.Stats,
		writerDone:     make(chan struct{}),
		streams:        make(map[uint32]*Stream),
		peerInitWindow: 65535,
		sendWindow:     65535,
		peerMaxFrame:   16384,
	}
	c.resetObs, _ = h.(ResetObserver)
	c.malformedObs, _ = h.(MalformedObserver)
	c.base = time.Now()
	c.wakeWriter.L = &c.mu
	c.recvWindow = int64(c.lim.InitialConnectionWindow)
	c.iw, _ = nc.(IdleWaiter)
	c.newReadFramer()
	c.hb.c = c
	c.dec = hpack.NewDecoder(DecoderTableSize, c.hb.emit)
	// The decoder's string limit only refuses lengths no valid block
	// within MaxHeaderBlockBytes can hold (Huffman codes are 5 bits at
	// least): garbage, COMPRESSION_ERROR. A string that does decode past
	// the header list size (a Huffman-coded HPACK bomb) is refused by the
	// list's accounting (headerBlock.emit): ENHANCE_YOUR_CALM, counted.
	c.maxStr = uint64(c.lim.MaxHeaderBlockBytes)*8/5 + 8
	c.dec.SetMaxStringLength(int(c.maxStr))
	c.wfr = http2.NewFramer(&c.wbuf, nil)
	return c
}

// Serve runs the connection until it ends and closes nc. It returns nil for
// a clean end (peer closed, graceful shutdown), a *ConnError when we ended
// it with an error GOAWAY (ENHANCE_YOUR_CALM for limit breaches), or the
// socket error. Panics in the connection's goroutines are recovered and
// counted; a Handler panic resets only its stream.
func (c *Conn) Serve() error {
	c.start()
	err := c.readLoopSafe()
	c.releaseReader()
	return c.teardown(err)
}

// start queues the server preface and starts the writer and the reaper.
// Apart from Serve, whose goroutine then reads: its frame is gone while
// the reader waits, and the stack the garbage collector sees in use for
// an idle connection is that much smaller.
//
//go:noinline
func (c *Conn) start() {
	c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.Conns })
	c.mu.Lock()
	// SETTINGS first (the server preface, RFC 9113 §3.4), even ahead of
	// the GOAWAY of a Shutdown called before Serve (a connection accepted
	// while the server drains).
	c.ctrl = slices.Insert(c.ctrl, 0, ctrlFrame{kind: cSettings})
	c.settingsAcksOwed++
	c.wakeLocked()
	if d := c.lim.InitialConnectionWindow - 65535; d > 0 {
		c.queueCtrlLocked(ctrlFrame{kind: cWindowUpdate, val: d})
	}
	period := max(c.lim.StreamIdleTimeout/4, 10*time.Millisecond)
	c.reapTimer = time.AfterFunc(period, func() { c.reap(period) })
	c.mu.Unlock()
	go c.writeLoop()
}

// Serve serves one HTTP/2 connection with default Options; see Conn.Serve.
func Serve(nc net.Conn, lim Limits, h Handler) error {
	return NewConn(nc, lim, h, nil).Serve()
}

// maxStreamID is the largest stream id (2^31-1), the last stream id of
// the advisory GOAWAY that begins a graceful shutdown.
const maxStreamID = 1<<31 - 1

// drainPing is the payload of the PING sent with the advisory GOAWAY: its
// ACK, a round trip later, says that every stream the client opened before
// it saw the GOAWAY has reached us.
var drainPing = [8]byte{'s', 'o', 'z', 'u', 'd', 'r', 'a', 'n'}

// finalGoAwayWait bounds how long the final GOAWAY waits for the ACK of
// drainPing (a client that does not answer PINGs).
const finalGoAwayWait = time.Second

// peerGoAwayQuiet: after a client's GOAWAY, once no stream is left, the
// connection ends when the client has sent nothing for this long.
const peerGoAwayQuiet = time.Second

// Shutdown starts a graceful shutdown, in two steps (RFC 9113 §6.8): an
// advisory GOAWAY(NO_ERROR) with the last stream id 2^31-1 and a PING; when
// its ACK comes back (or after at most finalGoAwayWait), the final
// GOAWAY(NO_ERROR) naming the last stream the client opened, which are all
// served. Streams above it are ignored; in-flight streams run until done or
// until Limits.GracefulShutdownDeadline, then the connection closes. A
// request the client sent while the advisory GOAWAY was on its way is
// served, not refused. Safe to call from any goroutine, more than once.
func (c *Conn) Shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shutdownLocked(true)
}

// shutdownLocked stops taking streams; ours (our soft stop) sends the
// advisory GOAWAY and the PING whose ACK sends the final one, and arms
// GracefulShutdownDeadline, which bounds our own soft stop only. After a
// client's GOAWAY (ours false) the client opens no more streams: one
// GOAWAY, final at once, and its streams in flight run to their end, as
// upstream lets them.
func (c *Conn) shutdownLocked(ours bool) {
	if c.dead {
		return
	}
	c.ourShutdown = c.ourShutdown || ours
	if !c.shutdown {
		c.shutdown = true
		if ours {
			c.goawayID = maxStreamID
			c.queueCtrlLocked(ctrlFrame{kind: cGoAway, stream: maxStreamID, val: uint32(http2.ErrCodeNo)})
			c.queueCtrlLocked(ctrlFrame{kind: cPing, data: drainPing})
			c.pingAcksOwed++
			wait := finalGoAwayWait
			if d := c.lim.GracefulShutdownDeadline; d > 0 {
				wait = min(wait, d/2)
			}
			c.finalTimer = time.AfterFunc(wait, func() {
				c.mu.Lock()
				c.finalGoAwayLocked()
				c.mu.Unlock()
			})
		}
	}
	if !ours {
		c.finalGoAwayLocked() // the client opens no more streams: nothing to wait for
	}
	if d := c.lim.GracefulShutdownDeadline; ours && d > 0 && c.shutdownTimer == nil {
		c.shutdownTimer = time.AfterFunc(d, func() {
			c.mu.Lock()
			c.stopReadingLocked()
			c.mu.Unlock()
		})
	}
	c.maybeFinishDrainLocked()
}

// finalGoAwayLocked sends the GOAWAY naming the last stream the client
// opened, once: streams above it are ignored from now on.
func (c *Conn) finalGoAwayLocked() {
	if c.dead || c.goawayFinal {
		return
	}
	c.goawayFinal = true
	c.goawayID = c.maxClientID
	c.queueCtrlLocked(ctrlFrame{kind: cGoAway, stream: c.goawayID, val: uint32(http2.ErrCodeNo)})
	if c.finalTimer != nil {
		c.finalTimer.Stop()
	}
	c.maybeFinishDrainLocked()
}

func (c *Conn) maybeFinishDrainLocked() {
	if !c.shutdown || !c.goawayFinal || len(c.streams) > 0 || c.handlers > 0 {
		return
	}
	if c.ourShutdown {
		c.stopReadingLocked()
		return
	}
	// Only the client's GOAWAY: it may still send frames that alter the
	// connection's state (PING, SETTINGS: RFC 9113 §6.8), which are
	// answered until it closes the connection or goes quiet.
	if !c.quiet.Swap(true) {
		c.quietDeadline(time.Now())
	}
}

// stopReadingLocked makes the reader's pending read return so Serve winds
// down without error.
func (c *Conn) stopReadingLocked() {
	c.stopReading.Store(true)
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *Conn) readLoopSafe() (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.ConnPanics })
			err = connErr(http2.ErrCodeInternal, fmt.Sprint("panic in reader: ", r))
		}
	}()
	return c.readLoop()
}

// now returns the connection's coarse time: frames read from one buffer
// share it, as they arrived together.
func (c *Conn) now() time.Time {
	if c.nowFn != nil {
		return c.nowFn()
	}
	return c.base.Add(time.Duration(c.clock.Load()))
}

// tick advances the coarse clock to t (never back: the reader and the
// writer both tick).
func (c *Conn) tick(t time.Time) {
	d := int64(t.Sub(c.base))
	for {
		old := c.clock.Load()
		if d <= old || c.clock.CompareAndSwap(old, d) {
			return
		}
	}
}

func (c *Conn) refreshReadDeadline() {
	now := time.Now()
	c.tick(now)
	if c.quiet.Load() && !c.stopReading.Load() {
		c.rdlSet = time.Time{}
		c.quietDeadline(now)
		return
	}
	if now.Sub(c.rdlSet) < min(time.Second, c.lim.ReadTimeout/4) {
		return
	}
	c.rdlSet = now
	c.nc.SetReadDeadline(now.Add(c.lim.ReadTimeout))
	if c.stopReading.Load() {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	} else if c.quiet.Load() { // set meanwhile by a handler's return
		c.quietDeadline(now)
	}
}

func (c *Conn) readErr(err error) error {
	if c.stopReading.Load() || errors.Is(err, io.EOF) {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return connErr(http2.ErrCodeNo, "read timeout")
	}
	return err
}

// awaitFrame waits, at a frame boundary, for the peer's next bytes,
// within ReadTimeout of its last ones (refreshReadDeadline). Running out
// of it ends the connection only when no stream is open: a peer awaiting
// its responses is not idle, and its streams are bounded otherwise (their
// backends' timeouts, StreamIdleTimeout). A frame begun must come whole
// within the deadline: ReadFrame's reads end the connection when it runs
// out.
func (c *Conn) awaitFrame() error {
	c.refreshReadDeadline()
	if !c.hbDeadline.IsZero() {
		// Within a header block: its CONTINUATION by the block's deadline.
		c.nc.SetReadDeadline(c.hbDeadline)
		c.rdlSet = time.Time{} // the next refresh re-arms the read timeout
		err := c.peek()
		if errors.Is(err, os.ErrDeadlineExceeded) && !c.stopReading.Load() {
			return errHeaderTimeout
		}
		if err != nil {
			return c.readErr(err)
		}
		c.refreshReadDeadline()
		return nil
	}
	for {
		err := c.peek() // consumes nothing: a timeout loses no byte
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || c.stopReading.Load() || !c.streamsOpen() {
			return c.readErr(err)
		}
		c.rdlSet = time.Time{} // re-armed at once
		c.refreshReadDeadline()
	}
}

// peek waits for the peer's next bytes, consuming none, with the read
// buffer in hand once they are there. The buffer is empty: over an
// IdleWaiter, the reader gives it back for the wait (an idle connection
// holds no read buffer), and its goroutine parks outside crypto/tls's
// frames (the IdleWaiter's business), with a shallow stack.
func (c *Conn) peek() error {
	if c.iw != nil {
		c.releaseReader()
		if c.rfrBig && !c.rfrMore && c.hbDeadline.IsZero() {
			c.unpinDecoder()
			c.newReadFramer()
		}
		if err := c.iw.WaitReadable(); err != nil {
			return err
		}
		c.takeReader()
	}
	_, err := c.br.Peek(1)
	return err
}

// maxKeptFrame bounds the payload buffer the reading Framer keeps while
// its connection is idle: the buffer grows to the largest frame read (16
// KiB for a body's DATA, a large header block's HEADERS or CONTINUATION,
// an extension frame) and never shrinks. Once a frame over this size was
// read, the reader makes a new Framer before its next wait (peek),
// outside a header block and unless the last frame was DATA over this
// size that did not end its stream (the rest of the body is likely to
// follow): a few allocations per large request body or head, none per
// frame of one, and none for ordinary heads, whose frames stay under it.
const maxKeptFrame = 4 << 10

// newReadFramer makes the reading Framer. Between header blocks it holds
// no state but its buffers.
func (c *Conn) newReadFramer() {
	c.rfr = http2.NewFramer(nil, frameSource{c})
	c.rfr.SetReuseFrames()
	c.rfr.SetMaxReadFrameSize(16384)
	c.rfrBig, c.rfrMore = false, false
}

// decoderUnpin is a header block of one indexed field (RFC 7541 §6.1:
// the static table's entry 2, ":method: GET"): decoded with emission
// disabled, it changes none of the decoder's state (its dynamic table,
// the block's fields).
var decoderUnpin = []byte{0x82}

// unpinDecoder makes the HPACK decoder forget the last fragment it was
// given, between header blocks: x/net's decoder keeps a slice of it after
// Write returns (the unparsed rest, empty but for its pointer), which
// kept the reading Framer's buffer, where fragments lie, alive once
// newReadFramer had replaced the Framer.
func (c *Conn) unpinDecoder() {
	c.dec.SetEmitEnabled(false)
	c.dec.Write(decoderUnpin)
	c.dec.Close()
	c.dec.SetEmitEnabled(true)
}

// streamsOpen reports whether some stream is open (not yet closed at the
// protocol level).
func (c *Conn) streamsOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams) > 0
}

func (c *Conn) readLoop() error {
	c.takeReader() // the preface comes with the handshake's last bytes: no wait first
	c.refreshReadDeadline()
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return connErr(http2.ErrCodeProtocol, "short client preface")
		}
		return c.readErr(err)
	}
	if string(preface[:]) != http2.ClientPreface {
		return connErr(http2.ErrCodeProtocol, "invalid client preface")
	}
	first := true
	for {
		if c.br.Buffered() == 0 {
			// A read from the socket comes. Frames already buffered
			// arrived with the last read.
			if err := c.awaitFrame(); err != nil || c.br == nil {
				// Without a buffer, the wait ended (readErr made its
				// error nil: a clean end), as a read from the buffer
				// would have, its error kept.
				return err
			}
		}
		var f http2.Frame
		fh, err := c.rfr.ReadFrameHeader()
		if err == nil {
			big := fh.Length > maxKeptFrame
			c.rfrBig = c.rfrBig || big
			c.rfrMore = big && fh.Type == http2.FrameData && !fh.Flags.Has(http2.FlagDataEndStream)
			if why := shortFrame(fh); why != "" {
				return connErr(http2.ErrCodeFrameSize, why)
			}
			if !first && c.badPriorityOnStream(fh) {
				// A stream error FRAME_SIZE_ERROR (RFC 9113 §6.3), where
				// the Framer would end the connection: the payload is
				// skipped, the frame header read.
				if _, err := io.CopyN(io.Discard, c.br, int64(fh.Length)); err != nil {
					return c.readErr(io.EOF)
				}
				if err := c.streamError(streamErr{fh.StreamID, http2.ErrCodeFrameSize, "PRIORITY frame not 5 octets long"}, c.closedStream(fh.StreamID)); err != nil {
					return err
				}
				continue
			}
			f, err = c.rfr.ReadFrameForHeader(fh)
		}
		if err != nil {
			var se http2.StreamError
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &se) && fh.Type == http2.FrameHeaders:
				// Padding as long as the payload (the Framer's one
				// stream error on HEADERS): a connection error (RFC
				// 9113 §6.2), and the field block, never decoded,
				// would leave the HPACK tables apart (§4.3).
				return connErr(http2.ErrCodeProtocol, "HEADERS padding as long as its payload")
			case errors.As(err, &se):
				c.mu.Lock()
				idle := c.idleLocked(se.StreamID)
				c.mu.Unlock()
				if idle {
					// A zero WINDOW_UPDATE increment: a stream error on
					// a stream that exists, but no RST_STREAM goes to an
					// idle one (RFC 9113 §5.1, §6.4).
					return connErr(http2.ErrCodeProtocol, fh.Type.String()+" frame on idle stream")
				}
				if err := c.streamError(streamErr{se.StreamID, se.Code, "invalid frame"}, c.closedStream(se.StreamID)); err != nil {
					return err
				}
				continue
			case errors.As(err, &ce):
				reason := "invalid frame"
				if d := c.rfr.ErrorDetail(); d != nil {
					reason = d.Error()
				}
				return connErr(http2.ErrCode(ce), reason)
			case errors.Is(err, http2.ErrFrameTooLarge):
				return connErr(http2.ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
			case errors.Is(err, io.ErrUnexpectedEOF):
				return c.readErr(io.EOF)
			}
			return c.readErr(err)
		}
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return connErr(http2.ErrCodeProtocol, "first frame is not SETTINGS")
			}
			first = false
		}
		if err := c.processFrame(f); err != nil {
			switch e := err.(type) {
			case streamErr:
				if err := c.streamError(e, false); err != nil {
					return err
				}
			case glitchErr:
				if err := c.streamError(e.streamErr, true); err != nil {
					return err
				}
			default:
				return err
			}
		}
		if c.afterFrame != nil {
			c.afterFrame()
		}
		if c.ctrlFull {
			return calm("peer is not reading control frames")
		}
	}
}

// shortFrame names why a frame is too short for the fields its flags
// announce (the pad length, HEADERS' priority), or "": a FRAME_SIZE_ERROR
// (RFC 9113 §4.2), which the Framer reports as a bare short read.
func shortFrame(fh http2.FrameHeader) string {
	need := uint32(0)
	switch fh.Type {
	case http2.FrameData:
		if fh.Flags.Has(http2.FlagDataPadded) {
			need = 1
		}
	case http2.FrameHeaders:
		if fh.Flags.Has(http2.FlagHeadersPadded) {
			need = 1
		}
		if fh.Flags.Has(http2.FlagHeadersPriority) {
			need += 5
		}
	default:
		return ""
	}
	if fh.Length < need {
		return fh.Type.String() + " frame too short for its padding or priority fields"
	}
	return ""
}

// badPriorityOnStream reports whether fh is a PRIORITY frame of a length
// other than 5 on a stream that is not idle: a stream error (RFC 9113
// §6.3). On an idle stream, where no RST_STREAM may go (§6.4), and on
// stream 0, it stays the Framer's connection error.
func (c *Conn) badPriorityOnStream(fh http2.FrameHeader) bool {
	if fh.Type != http2.FramePriority || fh.Length == 5 || fh.StreamID == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.idleLocked(fh.StreamID)
}

// streamError resets a stream because of the peer, counting the emitted
// RST_STREAM and, when glitch (see glitchErr), the glitch.
func (c *Conn) streamError(e streamErr, glitch bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if glitch && c.glitchWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxGlitchCount) {
		return calm("too many protocol glitches")
	}
	if e.code != http2.ErrCodeNo && e.code != http2.ErrCodeCancel {
		c.emitted++
		if c.emitted > c.lim.MaxRstStreamEmittedLifetime {
			return calm("too many RST_STREAM frames provoked")
		}
	}
	if s := c.streams[e.id]; s != nil {
		c.resetStreamLocked(s, e.code, false, e.reason)
	} else {
		c.queueRSTLocked(e.id, e.code, int64(c.lim.InitialStreamWindow))
	}
	return nil
}

// closedStream reports whether stream id, not idle, is no longer open: a
// stream error on it is a glitch (glitchErr).
func (c *Conn) closedStream(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id] == nil
}

func (c *Conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.HeadersFrame:
		return c.onHeaders(f)
	case *http2.ContinuationFrame:
		return c.onContinuation(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		return c.onPing(f)
	case *http2.RSTStreamFrame:
		return c.onRSTStream(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return streamErr{f.StreamID, http2.ErrCodeProtocol, "stream depends on itself"}
		}
		// Deprecated (RFC 9113 §5.3.2) and ignored.
		if c.advisoryFlood() {
			return calm("PRIORITY flood")
		}
		return nil
	case *http2.PriorityUpdateFrame:
		// RFC 9218's reprioritization, ignored as PRIORITY is.
		if c.advisoryFlood() {
			return calm("PRIORITY flood")
		}
		return nil
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.shutdownLocked(false)
		c.mu.Unlock()
		return nil
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE from client")
	}
	// Unknown frame types are ignored (RFC 9113 §5.5), an empty one of
	// 9 bytes as much as a full one: without a budget, a stream of them
	// took a core for as long as the peer sent.
	if c.advisoryFlood() {
		return calm("extension frame flood")
	}
	return nil
}

// advisoryFlood counts one frame we ignore by design (PRIORITY,
// PRIORITY_UPDATE, extension and unknown types) and reports whether the
// connection broke their shared budget: a few are a browser's, each
// handled one by one; a flood of them breaks a budget as large as the
// WINDOW_UPDATE one (upstream's priority class).
func (c *Conn) advisoryFlood() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.priWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxWindowUpdateStream0PerWindow)
}

// skippedLocked reports whether id lies in one of the last ranges of
// client stream ids that a new stream skipped: ids never opened (older
// skips are forgotten: their ids read as closed streams').
func (c *Conn) skippedLocked(id uint32) bool {
	for _, r := range c.skipped {
		if r[0] != 0 && r[0] <= id && id <= r[1] {
			return true
		}
	}
	return false
}

// forgetResetLocked drops id from the streams reset lately: its late
// frames are no longer expected.
func (c *Conn) forgetResetLocked(id uint32) {
	for i, r := range c.recent {
		if r == id {
			c.recent[i] = 0
		}
	}
}

// lateDataLocked reports whether n bytes of DATA on id, a stream no longer
// open, are what the peer may have sent before it saw our RST_STREAM: id
// was reset lately and n fits in what was left of its window then. Such
// DATA is dropped quietly (RFC 9113 §5.1, "closed"); more is DATA on a
// closed stream, a stream error and a glitch: without this bound a peer
// could go on sending DATA on a stream we reset, its connection window
// credited back at once, for as long as it liked.
func (c *Conn) lateDataLocked(id uint32, n int64) bool {
	for i, r := range c.recent {
		if r == id {
			if n > c.recentWin[i] {
				c.recentWin[i] = 0
				return false
			}
			c.recentWin[i] -= n
			return true
		}
	}
	return false
}

// idleLocked reports whether stream id is idle (RFC 9113 §5.1): a client
// id above every one the peer used, or any server id (we push none).
// A frame other than HEADERS or PRIORITY on it is a connection error
// PROTOCOL_ERROR.
func (c *Conn) idleLocked(id uint32) bool {
	return id%2 == 0 || id > c.maxClientID
}

// quietDeadline arms the read deadline of a connection drained after the
// client's GOAWAY (quiet): peerGoAwayQuiet from now, within the read
// timeout.
func (c *Conn) quietDeadline(now time.Time) {
	c.nc.SetReadDeadline(now.Add(min(peerGoAwayQuiet, c.lim.ReadTimeout)))
}

// idRing holds the last stream ids added to it (32), the oldest forgotten
// first.
type idRing struct {
	ids [32]uint32
	pos int
}

func (r *idRing) add(id uint32) {
	r.ids[r.pos] = id
	r.pos = (r.pos + 1) % len(r.ids)
}

func (r *idRing) has(id uint32) bool { return id != 0 && slices.Contains(r.ids[:], id) }

func (c *Conn) recentlyResetLocked(id uint32) bool {
	for _, r := range c.recent {
		if r == id {
			return true
		}
	}
	return false
}

func (c *Conn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	c.mu.Lock()
	open := c.streams[id] != nil
	ignore := false
	if !open {
		switch {
		case id%2 == 0:
			c.mu.Unlock()
			return connErr(http2.ErrCodeProtocol, "HEADERS on even stream id")
		case c.shutdown && id > c.goawayID:
			// A stream above our GOAWAY's last id: each of its blocks
			// (its request, its trailers) is decoded, for the HPACK
			// state, then ignored (RFC 9113 §6.8).
			ignore = true
			c.maxClientID = max(c.maxClientID, id)
		case id <= c.maxClientID && !c.recentlyResetLocked(id):
			c.mu.Unlock()
			if c.skippedLocked(id) {
				// Never opened: not a closed stream's, a new stream's
				// id below one already used (RFC 9113 §5.1.1).
				return connErr(http2.ErrCodeProtocol, "HEADERS on a stream id below one already used")
			}
			return connErr(http2.ErrCodeStreamClosed, "HEADERS on closed stream")
		case id <= c.maxClientID:
			// A block the peer sent before it saw our RST_STREAM (the
			// trailers of a request we refused or reset): decoded, for
			// the HPACK state, then ignored (RFC 9113 §5.1, "closed").
			ignore = true
		default:
			first := c.maxClientID + 2 // the next client id
			if c.maxClientID == 0 {
				first = 1
			}
			if id > first {
				c.skipped[c.skippedPos] = [2]uint32{first, id - 2}
				c.skippedPos = (c.skippedPos + 1) % len(c.skipped)
			}
			c.maxClientID = id
		}
	}
	c.mu.Unlock()
	c.hb.start(id, f.StreamEnded(), f.HasPriority() && f.Priority.StreamDep == id, open)
	c.hb.ignore = ignore
	if err := c.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded()); err != nil {
		return err
	}
	if f.HeadersEnded() {
		return c.endHeaderBlock()
	}
	c.hbDeadline = time.Now().Add(c.lim.HeaderTimeout) // CONTINUATION frames follow
	return nil
}

func (c *Conn) onContinuation(f *http2.ContinuationFrame) error {
	c.hb.frames++
	if c.hb.frames > c.lim.MaxContinuationFrames {
		return calm("CONTINUATION flood")
	}
	if !time.Now().Before(c.hbDeadline) {
		return errHeaderTimeout
	}
	if err := c.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded()); err != nil {
		return err
	}
	if f.HeadersEnded() {
		c.hbDeadline = time.Time{}
		return c.endHeaderBlock()
	}
	return nil
}

// errHeaderTimeout ends a connection whose header block, begun, did not
// end within HeaderTimeout: a slowloris of CONTINUATION frames, each
// within the read timeout, would hold it (and its HPACK state and block)
// for as many read timeouts as the CONTINUATION budget allows.
var errHeaderTimeout = connErr(http2.ErrCodeNo, "header block not completed within the request timeout")

// decodeFragment decodes p, the next fragment of the header block (its
// last when last is set). The decoder is given whole field
// representations only (wholeReps): the start of one that the fragment
// cuts is kept in hb.part until the next fragment completes it, so that
// x/net's decoder never holds such a part in a buffer of its own, which
// it keeps, as large as the largest part and what came after it until
// the part was whole, for the connection's life.
func (c *Conn) decodeFragment(p []byte, last bool) error {
	hb := &c.hb
	hb.bytes += uint32(len(p))
	if hb.bytes > c.lim.MaxHeaderBlockBytes {
		return calm("header block too large")
	}
	if len(hb.part) > 0 {
		hb.part = append(hb.part, p...)
		p = hb.part
	}
	n := len(p)
	if !last {
		n = wholeReps(p, c.maxStr)
	}
	if _, err := c.dec.Write(p[:n]); err != nil {
		return connErr(http2.ErrCodeCompression, err.Error())
	}
	fed := p[:n]
	hb.part = append(hb.part[:0], p[n:]...)
	if hb.scan.feed(fed) {
		return connErr(http2.ErrCodeCompression, "dynamic table size update after a field")
	}
	if c.hb.tooBig != "" {
		return calm(c.hb.tooBig)
	}
	return nil
}

func (c *Conn) endHeaderBlock() error {
	defer c.hb.shrink()
	if err := c.dec.Close(); err != nil {
		return connErr(http2.ErrCodeCompression, err.Error())
	}
	hb := &c.hb
	hb.list = materialize(hb.list, hb.arena, hb.refs)
	id := hb.streamID
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		return c.onTrailersLocked(s)
	}
	if hb.ignore || hb.trailers && c.recentlyResetLocked(id) {
		// Late trailers (onHeaders), or trailers of a stream we reset
		// while their block came: ignored, once per reset stream; a
		// further block on it is one on a closed stream.
		c.forgetResetLocked(id)
		return nil
	}
	if hb.trailers {
		return connErr(http2.ErrCodeStreamClosed, "HEADERS on closed stream")
	}
	if hb.prioSelf {
		return streamErr{id, http2.ErrCodeProtocol, "stream depends on itself"}
	}
	if c.shutdown && id > c.goawayID {
		return nil // RFC 9113 §6.8: streams above the GOAWAY id are ignored
	}
	var r request
	reason := validateRequest(hb.list, &r)
	if reason == "" && hb.endStream && r.contentLength > 0 {
		reason = "content-length with empty body"
	}
	if reason != "" {
		if c.malformedObs != nil {
			c.malformedObs.StreamMalformed(id, hb.list, reason)
		}
		return streamErr{id, http2.ErrCodeProtocol, reason}
	}
	if len(c.streams) >= int(c.lim.MaxConcurrentStreams) {
		return streamErr{id, http2.ErrCodeRefusedStream, "too many concurrent streams"}
	}
	if c.handlers >= int(c.lim.MaxConcurrentStreams) {
		// The peer keeps to the limit (only open streams count, RFC 9113
		// §5.1.2), but handlers of streams already closed still run:
		// refused, no fault of the peer's (no glitch counted) for as many
		// streams as the limit; beyond, until a handler returns, each
		// refusal is a glitch (the budget bounds a peer that keeps
		// opening streams it cannot have).
		c.busyRefused++
		if c.busyRefused > int(c.lim.MaxConcurrentStreams) {
			return glitchErr{streamErr{id, http2.ErrCodeRefusedStream, "streams opened while handlers of closed ones run"}}
		}
		c.queueRSTLocked(id, http2.ErrCodeRefusedStream, int64(c.lim.InitialStreamWindow))
		return nil
	}
	now := c.now()
	s := c.acquireStream(id, now)
	s.arena, hb.arena = hb.arena, s.arena[:0]
	s.refs, hb.refs = hb.refs, s.refs[:0]
	s.hdrs, hb.list = hb.list, s.hdrs[:0]
	s.req = r
	s.req.endStream = hb.endStream
	s.remoteClosed = hb.endStream
	s.inMap = true
	c.streams[id] = s
	c.peak = max(c.peak, len(c.streams))
	c.handlers++
	c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.Streams })
	c.stats.active(1)
	c.startHandler(s)
	return nil
}

func (c *Conn) onTrailersLocked(s *Stream) error {
	hb := &c.hb
	if s.remoteClosed {
		return streamErr{s.id, http2.ErrCodeStreamClosed, "HEADERS after END_STREAM"}
	}
	if !hb.endStream {
		return streamErr{s.id, http2.ErrCodeProtocol, "trailers without END_STREAM"}
	}
	if hb.prioSelf {
		return streamErr{s.id, http2.ErrCodeProtocol, "stream depends on itself"}
	}
	if reason := validateTrailers(hb.list); reason != "" {
		return streamErr{s.id, http2.ErrCodeProtocol, reason}
	}
	s.trArena, hb.arena = hb.arena, s.trArena[:0]
	s.trRefs, hb.refs = hb.refs, s.trRefs[:0]
	s.trailers, hb.list = hb.list, s.trailers[:0]
	s.lastActivity = c.now()
	return c.remoteEndLocked(s)
}

func (c *Conn) remoteEndLocked(s *Stream) error {
	if cl := s.req.contentLength; cl >= 0 && s.recvLen != cl {
		return streamErr{s.id, http2.ErrCodeProtocol, "body length differs from content-length"}
	}
	s.remoteClosed = true
	s.canRead.Broadcast()
	if s.localClosed {
		c.removeStreamLocked(s)
	}
	return nil
}

func (c *Conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	data := f.Data()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(data) == 0 && !f.StreamEnded() && c.emptyWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxEmptyDataPerWindow) {
		return calm("empty DATA flood")
	}
	if n > c.recvWindow {
		return connErr(http2.ErrCodeFlowControl, "DATA beyond connection window")
	}
	c.recvWindow -= n
	s := c.streams[id]
	if s == nil {
		if c.idleLocked(id) {
			return connErr(http2.ErrCodeProtocol, "DATA on idle stream")
		}
		c.creditConnLocked(n)
		if c.shutdown && id > c.goawayID {
			return nil // a stream above our GOAWAY's last id: ignored (RFC 9113 §6.8)
		}
		if c.lateDataLocked(id, n) {
			return nil
		}
		if c.ended.has(id) {
			// The peer ended the stream itself, and no reset crossed
			// its DATA: no frame of it can be late (RFC 9113 §5.1).
			return connErr(http2.ErrCodeStreamClosed, "DATA on a stream closed by END_STREAM")
		}
		return glitchErr{streamErr{id, http2.ErrCodeStreamClosed, "DATA on closed stream"}}
	}
	if s.remoteClosed {
		c.creditConnLocked(n)
		return streamErr{id, http2.ErrCodeStreamClosed, "DATA after END_STREAM"}
	}
	if n > s.recvWindow {
		c.creditConnLocked(n)
		return streamErr{id, http2.ErrCodeFlowControl, "DATA beyond stream window"}
	}
	s.recvWindow -= n
	s.recvLen += int64(len(data))
	if cl := s.req.contentLength; cl >= 0 && s.recvLen > cl {
		c.creditConnLocked(n)
		return streamErr{id, http2.ErrCodeProtocol, "body longer than content-length"}
	}
	s.lastActivity = c.now()
	if s.discard {
		c.creditConnLocked(n)
	} else {
		if len(data) > 0 {
			if s.roff > 0 && cap(s.rbuf)-len(s.rbuf) < len(data) {
				k := copy(s.rbuf, s.rbuf[s.roff:])
				s.rbuf, s.roff = s.rbuf[:k], 0
			}
			s.rbuf = append(s.rbuf, data...)
			s.canRead.Signal()
		}
		if pad := n - int64(len(data)); pad > 0 {
			c.creditLocked(s, pad)
		}
	}
	if f.StreamEnded() {
		return c.remoteEndLocked(s)
	}
	return nil
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.IsAck() && c.settingsAcksOwed > 0 {
		c.settingsAcksOwed-- // the ACK of ours: not counted, as upstream counts no ACK
		return nil
	}
	if c.settingsWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxSettingsPerWindow) {
		return calm("SETTINGS flood")
	}
	if f.IsAck() {
		return nil
	}
	if c.settingsTotal++; c.settingsTotal > c.lim.MaxSettingsLifetime {
		return calm("SETTINGS lifetime cap")
	}
	if uint32(f.NumSettings()) > c.lim.MaxSettingsEntries {
		return calm("too many SETTINGS entries")
	}
	for i := range f.NumSettings() {
		st := f.Setting(i)
		if err := st.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return connErr(http2.ErrCode(ce), "invalid "+st.ID.String())
			}
			return connErr(http2.ErrCodeProtocol, "invalid "+st.ID.String())
		}
		switch st.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - c.peerInitWindow
			c.peerInitWindow = int64(st.Val)
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > maxWindow {
					return connErr(http2.ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window")
				}
				if delta > 0 {
					c.enqueueIfPendingLocked(s)
					s.roomGrewLocked()
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(st.Val)
		case http2.SettingHeaderTableSize:
			c.peerTableDirty = true // our table stays empty: a size update to 0 (hpackenc.go)
		}
	}
	c.queueCtrlLocked(ctrlFrame{kind: cSettingsAck})
	return nil
}

func (c *Conn) onPing(f *http2.PingFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.IsAck() && f.Data == drainPing && c.pingAcksOwed > 0 {
		c.pingAcksOwed-- // the ACK of ours: not counted, as upstream counts no ACK
		if c.shutdown {
			c.finalGoAwayLocked()
		}
		return nil
	}
	if c.pingWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxPingPerWindow) {
		return calm("PING flood")
	}
	if f.IsAck() {
		return nil // answers no PING of ours
	}
	if c.pingTotal++; c.pingTotal > c.lim.MaxPingLifetime {
		return calm("PING lifetime cap")
	}
	c.queueCtrlLocked(ctrlFrame{kind: cPingAck, data: f.Data})
	return nil
}

func (c *Conn) onRSTStream(f *http2.RSTStreamFrame) error {
	id := f.StreamID
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rstWin.hit(c.now(), c.lim.FloodWindow, c.lim.MaxRstStreamPerWindow) {
		return calm("RST_STREAM flood")
	}
	c.rstTotal++
	if c.rstTotal > c.lim.MaxRstStreamLifetime {
		return calm("RST_STREAM lifetime cap")
	}
	s := c.streams[id]
	if s == nil {
		if c.idleLocked(id) {
			return connErr(http2.ErrCodeProtocol, "RST_STREAM on idle stream")
		}
		return nil
	}
	if !s.hdrQueued {
		c.earlyCancel++
		if c.earlyCancel > c.lim.MaxRstStreamAbusiveLifetime {
			return calm("too many streams cancelled before a response")
		}
	}
	c.resetStreamLocked(s, f.ErrCode, true, "")
	c.peerReset.add(id)
	return nil
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	id, inc := f.StreamID, int64(f.Increment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		if err := c.earnedLocked(&c.unreturned, inc); err != nil {
			return err
		}
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return connErr(http2.ErrCodeFlowControl, "connection window overflow")
		}
		for _, s := range c.streams {
			c.enqueueIfPendingLocked(s)
			s.roomGrewLocked() // Room is bounded by the connection window too
		}
		return nil
	}
	if c.idleLocked(id) {
		return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on idle stream")
	}
	if err := c.earnedLocked(&c.streamUnreturned, inc); err != nil {
		return err
	}
	s := c.streams[id]
	if s == nil {
		if c.peerReset.has(id) {
			return glitchErr{streamErr{id, http2.ErrCodeStreamClosed, "WINDOW_UPDATE on a stream the peer reset"}}
		}
		return nil // closed by END_STREAM or by our RST_STREAM: ignored (RFC 9113 §5.1, §6.9)
	}
	s.sendWindow += inc
	if s.sendWindow > maxWindow {
		return streamErr{id, http2.ErrCodeFlowControl, "stream window overflow"}
	}
	c.enqueueIfPendingLocked(s)
	s.roomGrewLocked()
	return nil
}

// earnedLocked takes a WINDOW_UPDATE's increment inc from *unreturned,
// the credit the peer owes for DATA we sent (on stream 0's window, or the
// streams' summed, closed streams included). Returning that credit is what
// a reading peer does (x/net's client sends one update per 4 KiB read);
// an update granting more counts toward the WINDOW_UPDATE flood window:
// a flood of updates, valid one by one, would otherwise cost a frame's
// handling each without end.
func (c *Conn) earnedLocked(unreturned *int64, inc int64) error {
	if inc <= *unreturned {
		*unreturned -= inc
		return nil
	}
	*unreturned = 0
	if c.wu0Win.hit(c.now(), c.lim.FloodWindow, c.lim.MaxWindowUpdateStream0PerWindow) {
		return calm("WINDOW_UPDATE flood")
	}
	return nil
}

// creditConnLocked returns n bytes of connection receive window, batching
// WINDOW_UPDATE frames.
func (c *Conn) creditConnLocked(n int64) {
	if n <= 0 {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.lim.InitialConnectionWindow)/4 {
		c.queueCtrlLocked(ctrlFrame{kind: cWindowUpdate, val: uint32(c.recvUnacked)})
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
}

// creditLocked returns n consumed bytes of stream s to both windows.
func (c *Conn) creditLocked(s *Stream, n int64) {
	c.creditConnLocked(n)
	if s.remoteClosed || s.reset != nil {
		return
	}
	s.recvUnacked += n
	if s.recvUnacked >= int64(c.lim.InitialStreamWindow)/4 {
		c.queueCtrlLocked(ctrlFrame{kind: cWindowUpdate, stream: s.id, val: uint32(s.recvUnacked)})
		s.recvWindow += s.recvUnacked
		s.recvUnacked = 0
	}
}

func (c *Conn) queueCtrlLocked(f ctrlFrame) {
	if len(c.ctrl) >= maxCtrlQueue && f.kind != cGoAway {
		c.ctrlFull = true
		return
	}
	c.ctrl = append(c.ctrl, f)
	c.wakeLocked()
}

// queueRSTLocked sends RST_STREAM(code) on id, whose peer may still send
// up to window bytes of DATA it had in flight (lateDataLocked). A stream
// already among the recent resets keeps what was left of its window.
func (c *Conn) queueRSTLocked(id uint32, code http2.ErrCode, window int64) {
	c.queueCtrlLocked(ctrlFrame{kind: cRST, stream: id, val: uint32(code)})
	if !c.recentlyResetLocked(id) {
		c.recent[c.recentPos] = id
		c.recentWin[c.recentPos] = max(window, 0)
		c.recentPos = (c.recentPos + 1) % len(c.recent)
	}
	if code != http2.ErrCodeNo {
		c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.StreamResets })
	}
}

// resetStreamLocked closes s abruptly: RST_STREAM unless the peer sent it,
// output dropped, unread input credited back, waiters woken.
func (c *Conn) resetStreamLocked(s *Stream, code http2.ErrCode, remote bool, reason string) {
	if s.reset != nil {
		return
	}
	s.reset = &StreamError{StreamID: s.id, Code: code, Remote: remote, Reason: reason}
	if !remote && s.inMap {
		c.queueRSTLocked(s.id, code, s.recvWindow)
	}
	if s.unqueueLocked() {
		// Its output no longer holds the connection window: the
		// streams waiting for room may have some.
		for _, o := range c.streams {
			o.roomGrewLocked()
		}
	}
	c.creditConnLocked(int64(len(s.rbuf) - s.roff))
	s.rbuf, s.roff = s.rbuf[:0], 0
	s.wakeLocked()
	c.removeStreamLocked(s)
}

func (c *Conn) removeStreamLocked(s *Stream) {
	if s.inMap {
		s.inMap = false
		if s.reset == nil && s.remoteClosed {
			c.ended.add(s.id)
		}
		delete(c.streams, s.id)
		if n := len(c.streams); c.peak > 64 && n*int(c.lim.StreamShrinkRatio) < c.peak {
			m := make(map[uint32]*Stream, n)
			for k, v := range c.streams {
				m[k] = v
			}
			c.streams, c.peak = m, n
		}
		c.maybeFinishDrainLocked()
	}
	c.maybeReleaseLocked(s)
}

func (c *Conn) maybeReleaseLocked(s *Stream) {
	if !s.inMap && s.handlerDone && !s.inReady {
		s.release()
	}
}

func (c *Conn) runHandler(s *Stream) {
	defer func() {
		if r := recover(); r != nil {
			c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.HandlerPanics })
			c.mu.Lock()
			if s.reset == nil && s.inMap {
				c.resetStreamLocked(s, http2.ErrCodeInternal, false, fmt.Sprint("handler panic: ", r))
			}
			c.mu.Unlock()
		}
		c.handlerReturned(s)
	}()
	c.h.ServeStream(s)
}

func (c *Conn) handlerReturned(s *Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.stopDeadlinesLocked()
	c.handlers--
	c.busyRefused = 0
	c.stats.active(-1)
	// handlerDone is set last: until then nothing below can release s, and
	// after the final maybeReleaseLocked s must not be touched.
	if s.reset == nil && s.inMap && !c.dead {
		if !s.endQueued {
			if !s.hdrQueued {
				s.status, s.hdrQueued = 200, true
			}
			s.endQueued = true
			c.enqueueLocked(s)
		}
		c.creditConnLocked(int64(len(s.rbuf) - s.roff))
		s.rbuf, s.roff = s.rbuf[:0], 0
		s.discard = true
		if s.localClosed && !s.remoteClosed {
			c.lingerLocked(s)
		}
	}
	s.handlerDone = true
	c.maybeReleaseLocked(s)
	c.maybeFinishDrainLocked()
}

// earlyLinger is how long a stream whose response is complete (a 404, a
// redirect, a backend's early answer) stays open to a peer still sending
// its request, before RST_STREAM(NO_ERROR).
const earlyLinger = time.Second

// lingerLocked keeps s, whose response is complete and whose handler has
// returned while the peer is still sending, open for earlyLinger: what the
// peer sends meanwhile is checked as on any open stream (content-length,
// trailers, windows: RFC 9113's stream errors, not frames ignored on a
// stream we reset) and its DATA dropped, the stream's window not
// replenished, so it costs at most that window. END_STREAM closes it
// normally; otherwise finishEarlyLocked ends it.
func (c *Conn) lingerLocked(s *Stream) {
	s.lingerUntil = time.Now().Add(earlyLinger)
	c.lingering = append(c.lingering, s.id)
	switch {
	case c.lingerTimer == nil:
		c.lingerTimer = time.AfterFunc(earlyLinger, c.endLingers)
	case len(c.lingering) == 1:
		c.lingerTimer.Reset(earlyLinger)
	}
}

// endLingers ends the lingering streams whose time is up.
func (c *Conn) endLingers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	now := time.Now()
	var next time.Time
	keep := c.lingering[:0]
	for _, id := range c.lingering {
		s := c.streams[id]
		switch {
		case s == nil || s.lingerUntil.IsZero(): // closed meanwhile
		case now.Before(s.lingerUntil):
			keep = append(keep, id)
			if next.IsZero() || s.lingerUntil.Before(next) {
				next = s.lingerUntil
			}
		default:
			c.finishEarlyLocked(s)
		}
	}
	c.lingering = keep
	if cap(c.lingering) > 64 && len(keep) < 16 {
		c.lingering = slices.Clone(keep)
	}
	if len(keep) > 0 {
		c.lingerTimer.Reset(next.Sub(now))
	}
}

// finishEarlyLocked ends a stream whose response is complete and whose
// handler has returned while the peer is still sending: RST_STREAM(NO_ERROR)
// (RFC 9113 §8.1).
func (c *Conn) finishEarlyLocked(s *Stream) {
	c.queueRSTLocked(s.id, http2.ErrCodeNo, s.recvWindow)
	s.reset = &StreamError{StreamID: s.id, Code: http2.ErrCodeNo, Reason: "response complete"}
	c.removeStreamLocked(s)
}

func (c *Conn) reap(period time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	c.tick(time.Now())
	now := c.now()
	for _, s := range c.streams {
		if c.lim.StreamIdleSparesAwaiting && s.remoteClosed && !s.hdrQueued && !s.handlerDone {
			continue // its handler awaits the response (Limits.StreamIdleSparesAwaiting)
		}
		if now.Sub(s.lastActivity) >= c.lim.StreamIdleTimeout {
			c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.ReapedStreams })
			c.resetStreamLocked(s, http2.ErrCodeCancel, false, "stream idle or stalled")
		}
	}
	c.reapTimer.Reset(period)
}

// teardown ends the connection: GOAWAY for errors, writer drained, streams
// failed, socket closed after a short linger so the peer can read GOAWAY.
func (c *Conn) teardown(err error) error {
	var ce *ConnError
	isConnErr := errors.As(err, &ce)
	c.mu.Lock()
	if isConnErr && !c.dead {
		if c.goawayFinal && ce.Code == http2.ErrCodeNo {
			// already said goodbye
		} else {
			// Never above the last stream id of a GOAWAY sent already
			// (RFC 9113 §6.8): the streams above it were ignored, and
			// the peer may have retried them.
			last := c.maxClientID
			if c.shutdown {
				last = min(last, c.goawayID)
			}
			c.queueCtrlLocked(ctrlFrame{kind: cGoAway, stream: last, val: uint32(ce.Code)})
			switch ce.Code {
			case http2.ErrCodeEnhanceYourCalm:
				c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.CalmGoAways })
				c.stats.flood(ce.Reason)
			case http2.ErrCodeNo:
			default:
				c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.ProtocolGoAway })
			}
		}
	}
	c.dead = true
	c.exitWriter = true
	for _, s := range c.streams {
		s.wakeLocked()
	}
	if c.reapTimer != nil {
		c.reapTimer.Stop()
	}
	if c.shutdownTimer != nil {
		c.shutdownTimer.Stop()
	}
	if c.finalTimer != nil {
		c.finalTimer.Stop()
	}
	if c.lingerTimer != nil {
		c.lingerTimer.Stop()
	}
	c.wakeWriter.Broadcast()
	c.mu.Unlock()
	c.closing.Store(true)
	c.nc.SetWriteDeadline(time.Now().Add(min(c.lim.WriteTimeout, 2*time.Second)))
	<-c.writerDone
	// Linger unless the socket itself failed: half-close, then drain what
	// the peer still sends for a moment, so unread input does not turn our
	// close into a TCP RST that destroys the GOAWAY in flight.
	if err == nil || isConnErr {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.nc.SetReadDeadline(time.Now().Add(min(lingerTime, c.lim.ReadTimeout)))
		io.CopyN(io.Discard, c.nc, lingerBytes)
	}
	c.nc.Close()
	if isConnErr && ce.Code == http2.ErrCodeNo {
		return nil
	}
	return err
}
