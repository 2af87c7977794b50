package h2

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// The write scheduler: control frames first, then streams round-robin, one
// frame per stream per turn, each DATA frame bounded by the peer's max frame
// size and both flow-control windows. Streams blocked on flow control leave
// the ready queue and come back on WINDOW_UPDATE or SETTINGS, so a stalled
// stream never holds up the others.

// enqueueLocked puts s in the ready queue if it is not there.
func (c *Conn) enqueueLocked(s *Stream) {
	if s.inReady || s.reset != nil || c.dead {
		return
	}
	s.inReady = true
	if c.readyHead > 0 && c.readyHead == len(c.ready) {
		c.ready, c.readyHead = c.ready[:0], 0
	}
	c.ready = append(c.ready, s)
	c.wakeLocked()
}

// wakeLocked wakes the writer for queued output, unless a batch is being
// written (by the writer, or inline by a handler): whoever writes it looks
// at the queues again when done.
func (c *Conn) wakeLocked() {
	if !c.writing {
		c.wakeWriter.Signal()
	}
}

// pendingLocked reports whether frames are queued for the writer.
func (c *Conn) pendingLocked() bool {
	return len(c.ctrl) > 0 || c.readyHead < len(c.ready)
}

// flushInlineLocked writes the queued output from the calling goroutine (a
// handler that just queued a whole response) when the writer is idle and s
// serves the connection's only stream: it saves waking the writer goroutine,
// which costs more than the write for a lone response. With other streams
// open the writer does it, since it gathers a burst of responses into one
// write. Called with mu held; it is released during the write. A write
// error tears the connection down as the writer's does.
func (c *Conn) flushInlineLocked() {
	if c.writing || c.dead || c.exitWriter || len(c.streams) > 1 || !c.pendingLocked() {
		return
	}
	c.writing = true
	c.wbuf.start()
	c.fillBatchLocked()
	var err error
	if len(c.wbuf.b) > 0 {
		c.mu.Unlock()
		err = c.flush()
		c.mu.Lock()
	}
	c.wbuf.done()
	c.writing = false
	if err != nil {
		c.dead = true
		c.stopReadingLocked()
		for _, o := range c.streams {
			o.wakeLocked()
		}
	}
	if c.exitWriter || c.pendingLocked() {
		c.wakeWriter.Signal()
	}
}

func (c *Conn) enqueueIfPendingLocked(s *Stream) {
	if len(s.out) > s.outHead || (s.hdrQueued && !s.hdrSent) || (s.endQueued && !s.localClosed) {
		c.enqueueLocked(s)
	}
}

func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	defer func() {
		if r := recover(); r != nil {
			c.stats.inc(func(s *Stats) *atomic.Uint64 { return &s.ConnPanics })
			c.nc.Close()
			c.mu.Lock()
			c.wbuf.done()
			c.stopReadingLocked()
			c.mu.Unlock()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		// c.writing is false here unless a handler's inline flush is
		// under way (it may be, before this goroutine first runs): the
		// batch is then its own, and this one waits for it.
		waited := false
		for c.writing || !c.exitWriter && !c.pendingLocked() {
			c.wakeWriter.Wait()
			waited = true
		}
		c.writing = true
		if waited && len(c.streams) > 1 {
			c.yieldLocked()
		}
		c.wbuf.start()
		c.fillBatchLocked()
		exit := c.exitWriter && len(c.ctrl) == 0
		if len(c.wbuf.b) > 0 {
			c.mu.Unlock()
			err := c.flush()
			c.mu.Lock()
			if err != nil {
				c.wbuf.done()
				c.dead = true
				c.stopReadingLocked()
				for _, s := range c.streams {
					s.wakeLocked()
				}
				return
			}
		}
		c.wbuf.done()
		c.writing = false
		if exit {
			return
		}
	}
}

// yieldLocked lets the goroutines runnable now (handlers whose backend
// answered in the same poll, while the writer was woken by the first)
// queue their output before a write, so that a burst of responses goes out
// in one write, not one each: it yields the processor while the ready
// queue grows, a few times at most.
func (c *Conn) yieldLocked() {
	for range 4 {
		n := len(c.ready) - c.readyHead
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		if c.exitWriter || len(c.ready)-c.readyHead == n {
			return
		}
	}
}

func (c *Conn) flush() error {
	if !c.closing.Load() {
		now := time.Now()
		c.tick(now)
		if now.Sub(c.wdlSet) >= min(time.Second, c.lim.WriteTimeout/4) {
			c.wdlSet = now
			c.nc.SetWriteDeadline(now.Add(c.lim.WriteTimeout))
		}
	}
	_, err := c.nc.Write(c.wbuf.b)
	return err
}

func (c *Conn) fillBatchLocked() {
	for _, f := range c.ctrl {
		c.writeCtrl(f)
	}
	c.ctrl = c.ctrl[:0]
	if cap(c.ctrl) > keptCtrl {
		c.ctrl = nil // a backlog's queue, up to maxCtrlQueue frames (20 KiB)
	}
	if c.exitWriter {
		for i := c.readyHead; i < len(c.ready); i++ {
			s := c.ready[i]
			c.ready[i] = nil
			s.inReady = false
			c.maybeReleaseLocked(s)
		}
		c.ready, c.readyHead = c.ready[:0], 0
		return
	}
	// Round-robin until the queue is empty or the batch full: a stream
	// that can send more goes back to the end of the queue, within this
	// batch (its DATA goes out with its HEADERS). Every turn that requeues
	// a stream wrote some of it, so the loop ends.
	for c.readyHead < len(c.ready) && len(c.wbuf.b) < batchBytes {
		s := c.ready[c.readyHead]
		c.ready[c.readyHead] = nil
		c.readyHead++
		// s stays marked inReady while it is written, so nothing inside
		// releases it to the pool under our feet.
		if c.writeStreamLocked(s) {
			c.ready = append(c.ready, s)
		} else {
			s.inReady = false
			c.maybeReleaseLocked(s)
		}
	}
	if c.readyHead == len(c.ready) {
		c.ready, c.readyHead = c.ready[:0], 0
	}
}

func (c *Conn) writeCtrl(f ctrlFrame) {
	switch f.kind {
	case cSettings:
		st := [...]http2.Setting{
			{ID: http2.SettingMaxConcurrentStreams, Val: c.lim.MaxConcurrentStreams},
			{ID: http2.SettingInitialWindowSize, Val: c.lim.InitialStreamWindow},
			{ID: http2.SettingMaxHeaderListSize, Val: c.lim.MaxHeaderListSize},
			{ID: http2.SettingHeaderTableSize, Val: DecoderTableSize},
		}
		c.wfr.WriteSettings(st[:]...)
	case cSettingsAck:
		c.wfr.WriteSettingsAck()
	case cPingAck:
		c.wfr.WritePing(true, f.data)
	case cPing:
		c.wfr.WritePing(false, f.data)
	case cRST:
		c.wfr.WriteRSTStream(f.stream, http2.ErrCode(f.val))
	case cWindowUpdate:
		c.wfr.WriteWindowUpdate(f.stream, f.val)
	case cGoAway:
		c.wfr.WriteGoAway(f.stream, http2.ErrCode(f.val), nil)
	}
}

// writeStreamLocked writes at most one frame's worth of s and reports
// whether s can send more right away.
func (c *Conn) writeStreamLocked(s *Stream) bool {
	if s.reset != nil || s.localClosed {
		return false
	}
	pending := len(s.out) - s.outHead
	if s.imStatus != 0 {
		c.writeHeaderBlock(s.id, s.imStatus, s.imArena, s.imRefs, false)
		s.imStatus = 0
		s.lastActivity = c.now()
		s.canWrite.Signal() // a WriteInterim may wait for this one to go
		if !s.hdrQueued {
			return false
		}
	}
	if s.hdrQueued && !s.hdrSent {
		end := s.endQueued && !s.trQueued && pending == 0
		c.writeHeaderBlock(s.id, s.status, s.respArena, s.respRefs, end)
		s.hdrSent = true
		s.lastActivity = c.now()
		if end {
			c.localEndLocked(s)
			return false
		}
		return pending > 0 || s.endQueued
	}
	if pending > 0 {
		n := int64(min(pending, c.peerMaxFrame))
		n = min(n, c.sendWindow, s.sendWindow)
		if n <= 0 {
			return false // blocked on flow control
		}
		end := int(n) == pending && s.endQueued && !s.trQueued
		c.wbuf.frame(http2.FrameData, flagIf(end, http2.FlagDataEndStream), s.id, s.out[s.outHead:s.outHead+int(n)])
		s.outHead += int(n)
		c.outQueued -= n
		if s.outHead == len(s.out) {
			s.out, s.outHead = s.out[:0], 0
		}
		c.sendWindow -= n
		c.unreturned += n
		c.streamUnreturned += n
		s.sendWindow -= n
		s.lastActivity = c.now()
		s.canWrite.Signal()
		if end {
			c.localEndLocked(s)
			return false
		}
		pending -= int(n)
		if pending > 0 {
			return c.sendWindow > 0 && s.sendWindow > 0
		}
		return s.endQueued
	}
	if s.endQueued {
		if s.trQueued {
			c.writeHeaderBlock(s.id, 0, s.rtArena, s.rtRefs, true)
		} else {
			c.wbuf.frame(http2.FrameData, http2.FlagDataEndStream, s.id, nil)
		}
		c.localEndLocked(s)
	}
	return false
}

func (c *Conn) localEndLocked(s *Stream) {
	s.localClosed = true
	switch {
	case s.remoteClosed:
		c.removeStreamLocked(s)
	case s.handlerDone:
		c.lingerLocked(s)
	}
}

// writeHeaderBlock HPACK-encodes a header block (hpackenc.go) and writes it
// as HEADERS plus CONTINUATIONs.
func (c *Conn) writeHeaderBlock(id uint32, status int, arena []byte, refs []fieldRef, end bool) {
	block := c.hbuf[:0]
	if c.peerTableDirty {
		block = appendHpackInt(block, hpTableSizeUpdate, 5, 0)
		c.peerTableDirty = false
	}
	if status != 0 {
		block = appendStatus(block, status)
	}
	noLength := status == 204 || status > 0 && status < 200 // never a content-length (RFC 9110 §8.6)
	for _, r := range refs {
		name := arena[r.off : r.off+r.nlen]
		value := arena[r.off+r.nlen : r.off+r.nlen+r.vlen]
		if string(name) == "content-length" {
			switch {
			case noLength:
				continue // never in a 1xx or a 204 (RFC 9110 §8.6)
			case status == 205:
				// A 205 has no content (RFC 9110 §15.3.6), but it is not
				// one of the responses whose content-length may describe
				// content not sent (RFC 9113 §8.1.1, RFC 9110 §6.4.1):
				// any other length than 0 would make it malformed.
				value = zeroLength
			}
		}
		block = appendHpackField(block, name, value)
	}
	if cap(block) <= maxKeptBlock {
		c.hbuf = block
	}
	frag := block[:min(len(block), c.peerMaxFrame)]
	block = block[len(frag):]
	c.wbuf.frame(http2.FrameHeaders, flagIf(end, http2.FlagHeadersEndStream)|flagIf(len(block) == 0, http2.FlagHeadersEndHeaders), id, frag)
	for len(block) > 0 {
		frag = block[:min(len(block), c.peerMaxFrame)]
		block = block[len(frag):]
		c.wbuf.frame(http2.FrameContinuation, flagIf(len(block) == 0, http2.FlagContinuationEndHeaders), id, frag)
	}
}

// zeroLength is the content-length of a 205 response.
var zeroLength = []byte("0")

// maxKeptBlock is the largest encoding buffer a connection keeps between
// header blocks.
const maxKeptBlock = 4 << 10

// frame appends a frame to the batch: its header (RFC 9113 §4.1), then its
// payload. DATA, HEADERS and CONTINUATION frames, whose payloads are
// large, are written so, once, into the batch: the Framer would copy
// each into a buffer of its own first, which would keep the size of the
// largest frame written for the connection's life (control frames, a few
// dozen bytes, still go through it).
func (w *batchBuf) frame(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	n := len(payload)
	w.b = append(w.b, byte(n>>16), byte(n>>8), byte(n), byte(typ), byte(flags),
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	w.b = append(w.b, payload...)
}

// flagIf is f when cond holds, else no flag.
func flagIf(cond bool, f http2.Flags) http2.Flags {
	if cond {
		return f
	}
	return 0
}
