package h2c

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Errors a Stream reports.
var (
	// ErrRefused: the backend did not process the request (GOAWAY with a
	// lower last-stream-id, REFUSED_STREAM, or the connection was gone
	// before the request went out); it may be sent again on another
	// connection. Read reports it as io.EOF before any response byte, which
	// the proxy's replay rule takes as "nothing answered" (see Stream.Read).
	ErrRefused = errors.New("h2c: request refused by the backend, not processed")
	// ErrConnLost: the connection failed while the stream was in flight.
	ErrConnLost = errors.New("h2c: backend connection lost")
)

// ResetError is a stream reset, by the backend or by us.
type ResetError struct {
	Code   http2.ErrCode
	Remote bool   // the backend sent RST_STREAM
	Reason string // why we reset it, when we did
}

func (e *ResetError) Error() string {
	if e.Remote {
		return fmt.Sprintf("h2c: stream reset by the backend: %v", e.Code)
	}
	return fmt.Sprintf("h2c: stream reset: %v: %s", e.Code, e.Reason)
}

// clientConn is one HTTP/2 connection to a backend: a reader goroutine
// handles every frame; writers (streams, and the reader for acks and
// window updates) serialise on wmu. Lock order: Pool.mu, then wmu, then mu.
type clientConn struct {
	p  *Pool
	nc net.Conn
	fr *http2.Framer

	wmu  wlock // guards bw, fr's writes, henc, hbuf, werr
	bw   *bufio.Writer
	henc *hpack.Encoder
	hbuf bytes.Buffer
	werr error

	mu           sync.Mutex
	streams      map[uint32]*stream // streams with HEADERS sent and not closed on the wire
	nextID       uint32
	active       int    // streams reserved or open: what counts against maxStreams
	maxStreams   uint32 // the backend's SETTINGS_MAX_CONCURRENT_STREAMS, capped by Options.MaxStreams
	peerWindow   int64  // the backend's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window
	peerMaxFrame uint32
	sendWin      int64 // connection-level send window
	recvWin      int64 // connection-level receive window left
	recvUnacked  int64 // received and not yet given back
	goAway       bool  // no new stream: the backend said GOAWAY, or we drain or idle out
	dead         bool
	err          error
	idle         *time.Timer
	ready        chan struct{} // closed at the backend's first SETTINGS
	ended        chan struct{} // closed when the connection ends (end)
	gotSettings  bool
	pingTimer    *time.Timer // armed while a liveness PING waits for its ACK (see probe)
	cancels      []uint32    // streams whose RST_STREAM CANCEL waits for cancelStream's writer
	cancelling   bool        // that writer is started
}

// newClientConn sends the connection preface on nc and waits, until
// deadlineAt, for the backend's SETTINGS.
func newClientConn(p *Pool, nc net.Conn, deadlineAt time.Time) (*clientConn, error) {
	c := &clientConn{
		p: p, nc: nc, streams: map[uint32]*stream{}, nextID: 1,
		maxStreams: min(100, p.opt.MaxStreams), // RFC 9113 §6.5.2 recommends 100 as a floor; the SETTINGS tell
		peerWindow: 65535, peerMaxFrame: 16384, sendWin: 65535, recvWin: connWindow,
		ready: make(chan struct{}), ended: make(chan struct{}), wmu: newWlock(),
	}
	c.bw = bufio.NewWriterSize(nc, 16<<10)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 16<<10))
	// We never raise SETTINGS_MAX_FRAME_SIZE: a larger frame is a
	// FRAME_SIZE_ERROR (RFC 9113 §4.2), read no further than its header.
	c.fr.SetMaxReadFrameSize(16384)
	c.fr.SetReuseFrames() // a DATA frame is copied out before the next is read (onData)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = p.opt.MaxHeaderListSize
	c.henc = hpack.NewEncoder(&c.hbuf)
	err := c.write(func() error {
		if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
			return err
		}
		if err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: p.opt.StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: p.opt.MaxHeaderListSize},
		); err != nil {
			return err
		}
		return c.fr.WriteWindowUpdate(0, connWindow-65535)
	})
	if err != nil {
		return nil, err
	}
	go c.readLoop()
	t := time.NewTimer(time.Until(deadlineAt))
	defer t.Stop()
	select {
	case <-c.ready:
		return c, nil
	case <-c.ended: // a connection error during the handshake
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("h2c handshake: %w", err)
	case <-t.C:
		c.fail(errors.New("no SETTINGS from the backend"), http2.ErrCodeSettingsTimeout)
		return nil, errors.New("the backend sent no SETTINGS in time (does it speak HTTP/2 with prior knowledge?)")
	}
}

// write runs fn under wmu, with the socket's write deadline armed, then
// flushes. A failure fails the whole connection (and is sticky).
func (c *clientConn) write(fn func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(fn)
}

// writeLocked is write with wmu held, bounded by Options.WriteTimeout.
func (c *clientConn) writeLocked(fn func() error) error {
	return c.writeLockedWithin(c.p.opt.WriteTimeout, fn)
}

// cancelStream sends RST_STREAM CANCEL for stream id without waiting: the
// frame is queued, and one goroutine writes the queue when wmu is free.
// Closing a stream is how a client's cancel reaches the backend, on the
// client connection's reader, which a backend that stopped reading must
// not hold up. The stream (taken off the wire by unmapLocked) keeps its
// slot until its RST_STREAM is written: the backend counts it open until
// then, and a new stream in its place would exceed the backend's
// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
func (c *clientConn) cancelStream(id uint32) {
	c.mu.Lock()
	c.cancels = append(c.cancels, id)
	start := !c.cancelling
	c.cancelling = true
	c.mu.Unlock()
	if start {
		go func() {
			var ids []uint32
			c.write(func() error {
				ids = c.takeCancels()
				for _, id := range ids {
					if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
						return err
					}
				}
				return nil
			})
			if ids == nil { // the connection failed before: nothing to write
				ids = c.takeCancels()
			}
			c.mu.Lock()
			c.active -= len(ids)
			c.mu.Unlock()
			c.released()
		}()
	}
}

// takeCancels empties the queue of cancelStream.
func (c *clientConn) takeCancels() []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.cancels
	c.cancels, c.cancelling = nil, false
	return ids
}

func (c *clientConn) writeLockedWithin(timeout time.Duration, fn func() error) error {
	if c.werr != nil {
		return c.werr
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	err := fn()
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
		go c.fail(fmt.Errorf("write to backend: %w", err), 0)
	}
	return err
}

// reserve takes a stream slot, or returns nil when c takes no new stream.
// Called with p.mu held.
func (c *clientConn) reserve() *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.goAway || c.active >= int(c.maxStreams) || c.nextID > 1<<31-1 {
		return nil
	}
	c.active++
	if c.idle != nil {
		c.idle.Stop()
	}
	return newStream(c)
}

// released runs after a stream freed its slot (with mu not held).
func (c *clientConn) released() {
	c.mu.Lock()
	closeNow := c.active == 0 && c.goAway && !c.dead
	if c.active == 0 && !c.goAway && !c.dead {
		if c.idle == nil {
			c.idle = time.AfterFunc(c.p.opt.IdleTimeout, c.idleOut)
		} else {
			c.idle.Reset(c.p.opt.IdleTimeout)
		}
	}
	c.mu.Unlock()
	if closeNow {
		c.close()
	}
	c.p.signal()
}

func (c *clientConn) idleOut() {
	c.mu.Lock()
	out := c.active == 0 && !c.dead
	if out {
		c.goAway = true
	}
	c.mu.Unlock()
	if out {
		c.close()
	}
}

// drain stops c from taking new streams; it is closed once idle.
func (c *clientConn) drain() {
	c.mu.Lock()
	c.goAway = true
	idle := c.active == 0
	c.mu.Unlock()
	if idle {
		c.close()
	}
}

// close ends the connection gracefully: GOAWAY(NO_ERROR), then the socket.
// The last-stream-id of a client's GOAWAY names streams the server opened
// (pushes): we accept none.
func (c *clientConn) close() { c.end(net.ErrClosed, http2.ErrCodeNo, true) }

// fail ends the connection: every stream in flight fails with ErrConnLost
// (a reserved stream not yet sent finds c dead and reports ErrRefused). A
// non-zero code is sent in a GOAWAY first.
func (c *clientConn) fail(err error, code http2.ErrCode) { c.end(err, code, code != 0) }

func (c *clientConn) end(err error, code http2.ErrCode, goAway bool) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.err = err
	close(c.ended)
	var failed []*stream
	for id, s := range c.streams {
		delete(c.streams, id)
		s.failLocked(fmt.Errorf("%w: %v", ErrConnLost, err))
		failed = append(failed, s)
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.mu.Unlock()
	if goAway {
		c.goAwayAndClose(code)
	} else {
		c.nc.Close()
	}
	c.p.remove(c)
	for _, s := range failed {
		s.wake()
	}
}

// goAwayWait bounds how long an ending connection waits for the write lock
// to send its GOAWAY.
const goAwayWait = time.Second

// goAwayAndClose sends GOAWAY(code), then closes the socket. When a write
// holds wmu (maybe one stuck on a backend that stopped reading, which the
// close then ends), a goroutine of its own does both, waiting at most
// goAwayWait for the lock: a connection that ends never holds up its
// caller, which may be a client connection's reader cancelling a stream.
func (c *clientConn) goAwayAndClose(code http2.ErrCode) {
	goAway := func() { // its write bounded by goAwayWait too: the socket may be full
		c.writeLockedWithin(goAwayWait, func() error { return c.fr.WriteGoAway(0, code, nil) })
		c.wmu.Unlock()
	}
	if c.wmu.TryLock() {
		goAway()
		c.nc.Close()
		return
	}
	go func() {
		if c.wmu.LockBefore(time.Now().Add(goAwayWait)) {
			goAway()
		}
		c.nc.Close()
	}()
}

// probeData is the payload of our liveness PINGs.
var probeData = [8]byte{'s', 'o', 'z', 'u', 'h', '2', 'c', 0}

// probe checks that the backend still answers, after a stream timed out:
// a PING, and the connection fails unless its ACK comes within
// PingTimeout. One probe at a time.
func (c *clientConn) probe() {
	c.mu.Lock()
	if c.dead || c.pingTimer != nil {
		c.mu.Unlock()
		return
	}
	c.pingTimer = time.AfterFunc(c.p.opt.PingTimeout, func() {
		c.fail(errors.New("no PING ACK from the backend"), 0)
	})
	c.mu.Unlock()
	// Its own goroutine: the stream that timed out does not wait for a
	// write under way; the PING's timer runs meanwhile.
	go c.write(func() error { return c.fr.WritePing(false, probeData) })
}

// closeWireLocked takes st off the wire: out of the map, its slot freed.
// The caller calls c.released() after unlocking.
func (c *clientConn) closeWireLocked(st *stream) {
	if c.unmapLocked(st) {
		c.active--
	}
}

// unmapLocked takes st off the wire but keeps its slot, for a stream we
// reset: the slot is freed once the RST_STREAM is written. It reports
// whether st was on the wire.
func (c *clientConn) unmapLocked(st *stream) bool {
	if st.wireClosed {
		return false
	}
	st.wireClosed = true
	if st.id != 0 {
		delete(c.streams, st.id)
	}
	return true
}
