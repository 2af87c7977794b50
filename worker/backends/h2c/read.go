package h2c

import (
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/net/http2"
)

// readLoop reads and handles every frame from the backend until the
// connection fails. A panic fails the connection, never the process.
func (c *clientConn) readLoop() {
	defer func() {
		if r := recover(); r != nil {
			c.fail(fmt.Errorf("panic in the h2c reader: %v", r), http2.ErrCodeInternal)
		}
	}()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code, fmt.Sprint(se.Cause), true)
				continue
			}
			var ce http2.ConnectionError
			code := http2.ErrCode(0)
			if errors.As(err, &ce) {
				code = http2.ErrCode(ce)
			} else if errors.Is(err, http2.ErrFrameTooLarge) {
				code = http2.ErrCodeFrameSize // RFC 9113 §4.2
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isNetErr(err) {
				code = http2.ErrCodeProtocol // framing errors the Framer reports plainly
			}
			c.fail(fmt.Errorf("read from backend: %w", err), code)
			return
		}
		err = c.handle(f)
		if c.p.afterFrame != nil {
			c.p.afterFrame(c)
		}
		if err != nil {
			var ce connError
			if errors.As(err, &ce) {
				c.fail(err, ce.code)
			} else {
				c.fail(err, http2.ErrCodeInternal)
			}
			return
		}
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// connError is a connection error found while handling a frame.
type connError struct {
	code   http2.ErrCode
	reason string
}

func (e connError) Error() string {
	return fmt.Sprintf("h2c: connection error %v: %s", e.code, e.reason)
}

// handle applies one frame.
func (c *clientConn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.write(func() error { return c.fr.WritePing(true, f.Data) })
		} else if f.Data == probeData {
			c.mu.Lock()
			if c.pingTimer != nil {
				c.pingTimer.Stop()
				c.pingTimer = nil
			}
			c.mu.Unlock()
		}
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.PushPromiseFrame:
		return connError{http2.ErrCodeProtocol, "PUSH_PROMISE with push disabled"}
	}
	return nil // PRIORITY and unknown frames are ignored
}

func (c *clientConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	hasTable := false
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return connError{http2.ErrCodeProtocol, err.Error()}
		}
		switch s.ID {
		case http2.SettingEnablePush:
			if s.Val != 0 {
				// RFC 9113 §6.5.2: a server never sets it to 1.
				return connError{http2.ErrCodeProtocol, "SETTINGS_ENABLE_PUSH = 1 from a server"}
			}
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = min(s.Val, c.p.opt.MaxStreams)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > 1<<31-1 {
					return connError{http2.ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window"}
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			tableSize, hasTable = s.Val, true
		}
		return nil
	})
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	first := !c.gotSettings
	c.gotSettings = true
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.write(func() error {
		if hasTable {
			c.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return c.fr.WriteSettingsAck()
	})
	for _, st := range streams {
		st.wake()
	}
	if first {
		close(c.ready)
	}
	c.p.signal() // the stream limit may have grown
	return nil
}

// onGoAway: no new stream on c; streams above the last id were not
// processed and fail with ErrRefused (safe to send again elsewhere);
// the others finish.
func (c *clientConn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	c.goAway = true
	var refused []*stream
	for id, st := range c.streams {
		if id > f.LastStreamID {
			st.failLocked(ErrRefused)
			c.closeWireLocked(st)
			refused = append(refused, st)
		}
	}
	c.mu.Unlock()
	for _, st := range refused {
		st.wake()
	}
	c.p.remove(c)
	c.released()
}

func (c *clientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
		if c.sendWin > 1<<31-1 {
			c.mu.Unlock()
			return connError{http2.ErrCodeFlowControl, "connection window overflow"}
		}
		streams := make([]*stream, 0, len(c.streams))
		for _, st := range c.streams {
			streams = append(streams, st)
		}
		c.mu.Unlock()
		for _, st := range streams {
			st.wake()
		}
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		return c.checkKnown(f.StreamID)
	}
	st.sendWin += int64(f.Increment)
	over := st.sendWin > 1<<31-1
	c.mu.Unlock()
	if over {
		c.resetStream(f.StreamID, http2.ErrCodeFlowControl, "stream window overflow", true)
		return nil
	}
	st.wake()
	return nil
}

// checkKnown: a frame for a stream not in the map is fine when the stream
// was ours and is closed; one we never opened is a connection error.
func (c *clientConn) checkKnown(id uint32) error {
	c.mu.Lock()
	next := c.nextID
	c.mu.Unlock()
	if id%2 == 0 || id >= next {
		return connError{http2.ErrCodeProtocol, fmt.Sprintf("frame on stream %d, which we never opened", id)}
	}
	return nil
}

func (c *clientConn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		return c.checkKnown(f.StreamID)
	}
	if f.ErrCode == http2.ErrCodeRefusedStream {
		st.failLocked(ErrRefused)
	} else if !(f.ErrCode == http2.ErrCodeNo && st.remoteDone) {
		st.failLocked(&ResetError{Code: f.ErrCode, Remote: true})
	}
	c.closeWireLocked(st)
	c.mu.Unlock()
	st.wake()
	c.released()
	return nil
}

func (c *clientConn) onHeaders(f *http2.MetaHeadersFrame) error {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		return c.checkKnown(f.StreamID)
	}
	reason := st.onHeadersLocked(f)
	done := st.remoteDone && st.localDone
	if done {
		c.closeWireLocked(st)
	}
	c.mu.Unlock()
	st.wake()
	if reason != "" {
		c.resetStream(f.StreamID, http2.ErrCodeProtocol, reason, true)
	} else if done {
		c.released()
	}
	return nil
}

func (c *clientConn) onData(f *http2.DataFrame) error {
	n := int64(f.Length)
	c.mu.Lock()
	c.recvWin -= n
	if c.recvWin < 0 {
		c.mu.Unlock()
		return connError{http2.ErrCodeFlowControl, "DATA beyond the connection window"}
	}
	// The connection window is given back on receipt: what a stream may
	// make us hold is bounded by its own window.
	c.recvUnacked += n
	var credit int64
	if c.recvUnacked >= connWindow/4 {
		credit, c.recvUnacked = c.recvUnacked, 0
		c.recvWin += credit
	}
	st := c.streams[f.StreamID]
	var reason string
	var done bool
	if st != nil {
		reason = st.onDataLocked(f.Data(), n, f.StreamEnded())
		done = reason == "" && st.remoteDone && st.localDone
		if done {
			c.closeWireLocked(st)
		}
	}
	c.mu.Unlock()
	if credit > 0 {
		c.write(func() error { return c.fr.WriteWindowUpdate(0, uint32(credit)) })
	}
	if st == nil {
		return c.checkKnown(f.StreamID)
	}
	st.wake()
	if reason != "" {
		code := http2.ErrCodeProtocol
		if reason == reasonFlow {
			code = http2.ErrCodeFlowControl
		}
		c.resetStream(f.StreamID, code, reason, true)
	} else if done {
		c.released()
	}
	return nil
}

// resetStream sends RST_STREAM(code) for stream id and fails it (a stream
// error: the connection carries on). The stream's slot is freed once the
// RST_STREAM is written, as in cancelStream.
func (c *clientConn) resetStream(id uint32, code http2.ErrCode, reason string, send bool) {
	c.mu.Lock()
	st := c.streams[id]
	if st != nil {
		st.failLocked(&ResetError{Code: code, Reason: reason})
		c.unmapLocked(st)
	}
	c.mu.Unlock()
	if st != nil {
		st.wake()
	}
	if send && id != 0 {
		c.write(func() error { return c.fr.WriteRSTStream(id, code) })
	}
	if st != nil {
		c.mu.Lock()
		c.active--
		c.mu.Unlock()
		c.released()
	}
}
