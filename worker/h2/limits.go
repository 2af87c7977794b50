// Package h2 is the worker's own HTTP/2 server connection handler (RFC 9113,
// RFC 7541) with per-connection flood accounting; it hands each request
// stream to a Handler that bridges it to the router and backend pools.
package h2

import "time"

// Limits bounds what one HTTP/2 connection may cost. Field names mirror the
// listener's h2_* knobs of command.proto so the worker snapshot can fill
// them one to one; a zero field means "use the default" (see DefaultLimits),
// which is applied in one place, by withDefaults.
//
// Per-window counters use windows of FloodWindow (1 s by default), each
// starting with half the previous one's count (windowCounter).
// Breaching any flood or abuse limit ends the connection with
// GOAWAY(ENHANCE_YOUR_CALM).
type Limits struct {
	// MaxConcurrentStreams is advertised as SETTINGS_MAX_CONCURRENT_STREAMS
	// and enforced (REFUSED_STREAM beyond it); handlers still running on
	// reset streams count too. h2_max_concurrent_streams, default 100, at
	// most MaxConcurrentStreamsCap (upstream's clamp).
	MaxConcurrentStreams uint32

	// MaxRstStreamPerWindow caps RST_STREAM frames received per window
	// (rapid reset, CVE-2023-44487). h2_max_rst_stream_per_window, default 100.
	MaxRstStreamPerWindow uint32
	// MaxRstStreamLifetime caps RST_STREAM frames received over the
	// connection's life. h2_max_rst_stream_lifetime, default 10 000.
	MaxRstStreamLifetime uint64
	// MaxRstStreamAbusiveLifetime caps RST_STREAM frames received for
	// streams whose response had not started (early cancel).
	// h2_max_rst_stream_abusive_lifetime, default 50.
	MaxRstStreamAbusiveLifetime uint64
	// MaxRstStreamEmittedLifetime caps RST_STREAM frames we send with an
	// error code other than NO_ERROR or CANCEL (peer-provoked resets,
	// "MadeYouReset"). h2_max_rst_stream_emitted_lifetime, default 500.
	MaxRstStreamEmittedLifetime uint64

	// MaxPingPerWindow caps PING frames per window: those that are not
	// ACKs, and ACKs answering no PING of ours. h2_max_ping_per_window,
	// default 100.
	MaxPingPerWindow uint32
	// MaxPingLifetime caps the PING frames (not ACKs) received over the
	// connection's life, as upstream's never-decaying ceiling does. Not a
	// command.proto knob; default 10 000 (upstream's constant).
	MaxPingLifetime uint64
	// MaxSettingsPerWindow caps SETTINGS frames per window: those that are
	// not ACKs, and ACKs answering no SETTINGS of ours (the ACK of our
	// preface's is not counted). h2_max_settings_per_window, default 50.
	MaxSettingsPerWindow uint32
	// MaxSettingsLifetime caps the SETTINGS frames (not ACKs) received
	// over the connection's life. Not a command.proto knob; default
	// 10 000 (upstream's constant).
	MaxSettingsLifetime uint64
	// MaxSettingsEntries caps the parameters in one SETTINGS frame. Not a
	// command.proto knob; default 64.
	MaxSettingsEntries uint32
	// MaxEmptyDataPerWindow caps DATA frames with no payload and no
	// END_STREAM per window. h2_max_empty_data_per_window, default 100.
	MaxEmptyDataPerWindow uint32
	// MaxWindowUpdateStream0PerWindow caps connection-level WINDOW_UPDATE
	// frames per window; updates that merely return credit for DATA we
	// sent are not counted (a fast download legitimately sends thousands). h2_max_window_update_stream0_per_window, default 100.
	MaxWindowUpdateStream0PerWindow uint32

	// MaxContinuationFrames caps CONTINUATION frames in one header block
	// (CVE-2024-27316). h2_max_continuation_frames, default 20.
	MaxContinuationFrames uint32
	// MaxHeaderBlockBytes caps the encoded size of one header block
	// (HEADERS plus CONTINUATIONs). Not a command.proto knob; default 64 KiB.
	MaxHeaderBlockBytes uint32
	// MaxHeaderFields caps decoded fields per header block, pseudo-headers
	// included. h2_max_header_fields, default 128.
	MaxHeaderFields uint32
	// MaxHeaderListSize caps the decoded header list (RFC 9113 §6.5.2
	// accounting: name + value + 32 per field) and is advertised as
	// SETTINGS_MAX_HEADER_LIST_SIZE; exceeding it (an HPACK bomb) is a
	// breach. h2_max_header_list_size, default 64 KiB.
	MaxHeaderListSize uint32
	// MaxHeaderTableSize caps, as upstream's h2_max_header_table_size does,
	// the peer's SETTINGS_HEADER_TABLE_SIZE: the most HPACK dynamic table
	// our encoder may keep for this connection, whatever the peer offers.
	// Our encoder keeps none (hpackenc.go), so it is met by construction.
	// The table we let the peer's encoder use is DecoderTableSize, which we
	// advertise. Default 65536.
	MaxHeaderTableSize uint32

	// InitialConnectionWindow is the connection-level receive window.
	// h2_initial_connection_window, default 1 MiB.
	InitialConnectionWindow uint32
	// InitialStreamWindow is advertised as SETTINGS_INITIAL_WINDOW_SIZE and
	// bounds what one stream buffers. Not a command.proto knob; default
	// 256 KiB, clamped to InitialConnectionWindow.
	InitialStreamWindow uint32
	// StreamShrinkRatio: the stream table is rebuilt (its memory returned)
	// when the live stream count falls below peak/StreamShrinkRatio.
	// h2_stream_shrink_ratio, default 2, minimum 2.
	StreamShrinkRatio uint32

	// StreamIdleTimeout reaps a stream (RST_STREAM(CANCEL)) that made no
	// progress in either direction for this long; this also reaps streams
	// stalled on a zero flow-control window. h2_stream_idle_timeout_seconds,
	// default 30 s.
	StreamIdleTimeout time.Duration
	// StreamIdleSparesAwaiting keeps the reaper from a stream whose
	// request is complete (END_STREAM received) and whose response has
	// not begun while its handler runs: the handler awaits its backend,
	// bounded by its own timeouts. The worker sets it when
	// h2_stream_idle_timeout_seconds is not stated: its default, the
	// listener's back_timeout (floored at 30 s), would fall due with the
	// backend timeout and reset with CANCEL a stream that timeout answers
	// 504 at the same instant, as it answers an HTTP/1.1 request.
	StreamIdleSparesAwaiting bool
	// GracefulShutdownDeadline bounds how long in-flight streams may run
	// after Shutdown's GOAWAY. Zero means the default (5 s, upstream's); a negative
	// value means no deadline (command.proto's "0 = none" maps to -1).
	// h2_graceful_shutdown_deadline_seconds.
	GracefulShutdownDeadline time.Duration
	// MaxGlitchCount caps protocol anomalies (malformed requests, frames on
	// closed streams, stream-level protocol errors) per window, as
	// upstream's glitch_window: a burst of this many passes, a sustained
	// rate of about half as many per window too. h2_max_glitch_count,
	// default 100.
	MaxGlitchCount uint32

	// FloodWindow is the length of the per-window counters; default 1 s.
	FloodWindow time.Duration
	// ReadTimeout is the deadline for the peer to send the next frame
	// (front_timeout); default 60 s. Every read on the connection has it;
	// between frames, running out of it ends the connection only when no
	// stream is open (a peer awaiting responses is not idle).
	ReadTimeout time.Duration
	// WriteTimeout bounds each socket write; default ReadTimeout.
	WriteTimeout time.Duration
	// HeaderTimeout bounds a header block: HEADERS without END_HEADERS,
	// then its CONTINUATION frames, all within it (request_timeout, as an
	// HTTP/1.1 head); default ReadTimeout. Past it the connection ends.
	HeaderTimeout time.Duration
}

// DefaultLimits returns the design defaults (docs/architecture.md §3).
func DefaultLimits() Limits { return Limits{}.withDefaults() }

// withDefaults fills every zero field with its default. It is the only place
// defaults live.
func (l Limits) withDefaults() Limits {
	u32 := func(p *uint32, d uint32) {
		if *p == 0 {
			*p = d
		}
	}
	u64 := func(p *uint64, d uint64) {
		if *p == 0 {
			*p = d
		}
	}
	dur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	u32(&l.MaxConcurrentStreams, 100)
	l.MaxConcurrentStreams = min(l.MaxConcurrentStreams, MaxConcurrentStreamsCap)
	u32(&l.MaxRstStreamPerWindow, 100)
	u64(&l.MaxRstStreamLifetime, 10000)
	u64(&l.MaxRstStreamAbusiveLifetime, 50)
	u64(&l.MaxRstStreamEmittedLifetime, 500)
	u32(&l.MaxPingPerWindow, 100)
	u32(&l.MaxSettingsPerWindow, 50)
	u64(&l.MaxPingLifetime, 10000)
	u64(&l.MaxSettingsLifetime, 10000)
	u32(&l.MaxSettingsEntries, 64)
	u32(&l.MaxEmptyDataPerWindow, 100)
	u32(&l.MaxWindowUpdateStream0PerWindow, 100)
	u32(&l.MaxContinuationFrames, 20)
	u32(&l.MaxHeaderBlockBytes, 64<<10)
	u32(&l.MaxHeaderFields, 128)
	u32(&l.MaxHeaderListSize, 64<<10)
	u32(&l.MaxHeaderTableSize, 64<<10)
	u32(&l.InitialConnectionWindow, 1<<20)
	if l.InitialConnectionWindow < 65535 {
		l.InitialConnectionWindow = 65535 // cannot shrink below the RFC initial value
	}
	if l.InitialConnectionWindow > maxWindow {
		l.InitialConnectionWindow = maxWindow
	}
	u32(&l.InitialStreamWindow, 256<<10)
	if l.InitialStreamWindow > l.InitialConnectionWindow {
		l.InitialStreamWindow = l.InitialConnectionWindow
	}
	u32(&l.StreamShrinkRatio, 2)
	if l.StreamShrinkRatio < 2 {
		l.StreamShrinkRatio = 2
	}
	dur(&l.StreamIdleTimeout, 30*time.Second)
	dur(&l.GracefulShutdownDeadline, 5*time.Second)
	u32(&l.MaxGlitchCount, 100)
	dur(&l.FloodWindow, time.Second)
	dur(&l.ReadTimeout, 60*time.Second)
	dur(&l.WriteTimeout, l.ReadTimeout)
	dur(&l.HeaderTimeout, l.ReadTimeout)
	return l
}

const maxWindow = 1<<31 - 1

// MaxConcurrentStreamsCap bounds h2_max_concurrent_streams, as upstream
// clamps it: each stream may hold about 120 KiB (docs/architecture.md).
const MaxConcurrentStreamsCap = 10000

// DecoderTableSize is the HPACK dynamic table the peer's encoder may use for
// its header blocks, advertised as SETTINGS_HEADER_TABLE_SIZE: RFC 7541's
// initial 4096, as upstream advertises (h2_max_header_table_size bounds the
// other direction's table, see Limits.MaxHeaderTableSize).
const DecoderTableSize = 4096

// windowCounter counts events in windows whose count, as upstream's flood
// detector's, is halved rather than zeroed as each new window begins
// (once per window elapsed): a burst of max at once passes, but a burst
// straddling a window's end, or a rate kept just under max per window,
// still adds up (a sustained rate above max/2 per window breaks it).
type windowCounter struct {
	start time.Time
	n     uint32
}

// hit records one event at now and reports whether the count exceeds max.
func (w *windowCounter) hit(now time.Time, win time.Duration, max uint32) bool {
	switch el := now.Sub(w.start); {
	case el < 0:
		w.start = now // the clock stepped back: keep the count
	case el >= 32*win:
		w.start, w.n = now, 0
	case el >= win:
		k := el / win
		w.n >>= uint(k)
		w.start = w.start.Add(k * win)
	}
	w.n++
	return w.n > max
}
