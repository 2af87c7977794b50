package main

import (
	"errors"
	"math"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// `listener http|https|tcp update` patches a listener in place
// (update_*_listener): only the flags given change; the others keep their
// value.
var (
	fStrictSNI    = &flagSpec{long: "strict-sni-binding", kind: kindBool, help: "refuse a request whose Host has no certificate matching the TLS SNI"}
	fDisableHTTP1 = &flagSpec{long: "disable-http11", kind: kindBool, help: "offer only h2 by ALPN"}
	fALPN         = &flagSpec{long: "alpn-protocols", kind: kindString, metavar: "P,…", help: "ALPN protocols in order of preference: h2, http/1.1"}
)

// h2UpdateFlags are the HTTP/2 knobs of `listener http|https update`,
// spelled as upstream's CLI spells them (the h2_* keys with dashes), with
// the units and defaults of docs/configuration.md (HTTP/2 limits). The
// state checks their values (docs/protocol.md §5.3: at least 1, the shrink
// ratio at least 2, the concurrent streams at most 10000, the connection
// window 65535 to 2147483647, the graceful shutdown deadline 0 for none).
var h2UpdateFlags = []*flagSpec{
	h2Flag("h2-max-rst-stream-per-window", "N", math.MaxUint32, "RST_STREAM frames per 1 s window (rapid reset, CVE-2023-44487; default 100)"),
	h2Flag("h2-max-ping-per-window", "N", math.MaxUint32, "PING frames per window (CVE-2019-9512; default 100)"),
	h2Flag("h2-max-settings-per-window", "N", math.MaxUint32, "SETTINGS frames per window (CVE-2019-9515; default 50)"),
	h2Flag("h2-max-empty-data-per-window", "N", math.MaxUint32, "empty DATA frames per window (CVE-2019-9518; default 100)"),
	h2Flag("h2-max-window-update-stream0-per-window", "N", math.MaxUint32, "WINDOW_UPDATE frames granting more than the DATA sent, per window (default 100)"),
	h2Flag("h2-max-continuation-frames", "N", math.MaxUint32, "CONTINUATION frames per header block (CVE-2024-27316; default 20)"),
	h2Flag("h2-max-glitch-count", "N", math.MaxUint32, "protocol anomalies per window before GOAWAY(ENHANCE_YOUR_CALM) (default 100)"),
	h2Flag("h2-initial-connection-window", "BYTES", math.MaxUint32, "connection-level receive window, 65535 to 2147483647 (default 1048576)"),
	h2Flag("h2-max-concurrent-streams", "N", math.MaxUint32, "concurrent streams per connection, 1 to 10000 (SETTINGS_MAX_CONCURRENT_STREAMS; default 100)"),
	h2Flag("h2-stream-shrink-ratio", "N", math.MaxUint32, "stream table shrink ratio, at least 2 (default 2)"),
	h2Flag("h2-max-rst-stream-lifetime", "N", math.MaxUint64, "RST_STREAM frames received per connection (default 10000)"),
	h2Flag("h2-max-rst-stream-abusive-lifetime", "N", math.MaxUint64, "RST_STREAM frames received before a response started, per connection (default 50)"),
	h2Flag("h2-max-rst-stream-emitted-lifetime", "N", math.MaxUint64, "RST_STREAM frames the peer provoked, per connection (CVE-2025-8671; default 500)"),
	h2Flag("h2-max-header-list-size", "BYTES", math.MaxUint32, "decoded header list per request (SETTINGS_MAX_HEADER_LIST_SIZE; default 65536)"),
	h2Flag("h2-max-header-table-size", "BYTES", math.MaxUint32, "HPACK dynamic table accepted from the peer's SETTINGS (default 65536)"),
	h2Flag("h2-max-header-fields", "N", math.MaxUint32, "header fields per header block (default 128)"),
	h2Flag("h2-stream-idle-timeout-seconds", "SECONDS", math.MaxUint32, "reset a stream idle this long (default back_timeout, at least 30)"),
	h2Flag("h2-graceful-shutdown-deadline-seconds", "SECONDS", math.MaxUint32, "streams' time to finish after a soft stop's GOAWAY; 0 = no limit (default 5)"),
}

func h2Flag(long, metavar string, max uint64, help string) *flagSpec {
	return &flagSpec{long: long, kind: kindUint, max: max, metavar: metavar, help: help}
}

var fSozuIDHeader = &flagSpec{long: "sozu-id-header", kind: kindString, metavar: "NAME", help: "name of the request id header sent to backends and clients"}

// listenerUpdateFlags are the flags of `listener PROTO update`.
func listenerUpdateFlags(proto string) []*flagSpec {
	fs := []*flagSpec{fAddress, fPublicAddress, fExpectProxy, fFrontTimeout, fBackTimeout, fConnectTimeout}
	if proto != "tcp" {
		fs = append(fs, fRequestTimeout, fStickyName.withHelp("sticky-session cookie name"), fAnswer, fSozuIDHeader)
	}
	if proto == "https" {
		fs = append(fs, fStrictSNI, fDisableHTTP1, fALPN,
			fHSTS.withHelp("the listener's default for its frontends: send Strict-Transport-Security (--hsts=false: do not)"))
		fs = append(fs, hstsFlags[1:]...)
	}
	if proto != "tcp" {
		fs = append(fs, h2UpdateFlags...)
	}
	return fs
}

// h2Patch holds the h2_* fields of an update_http(s)_listener patch.
type h2Patch struct {
	rstPerWindow, pingPerWindow, settingsPerWindow, emptyDataPerWindow, wu0PerWindow *uint32
	continuation, glitch, connWindow, streams, shrink                                *uint32
	rstLifetime, rstAbusive, rstEmitted                                              *uint64
	listSize, tableSize, fields, idle, graceful                                      *uint32
}

func h2PatchFrom(v *values) h2Patch {
	u32 := func(name string) *uint32 {
		if !v.has(name) {
			return nil
		}
		return ptr(v.u32(name, 0))
	}
	u64 := func(name string) *uint64 {
		if !v.has(name) {
			return nil
		}
		return ptr(v.u64(name))
	}
	return h2Patch{
		rstPerWindow: u32("h2-max-rst-stream-per-window"), pingPerWindow: u32("h2-max-ping-per-window"),
		settingsPerWindow: u32("h2-max-settings-per-window"), emptyDataPerWindow: u32("h2-max-empty-data-per-window"),
		wu0PerWindow: u32("h2-max-window-update-stream0-per-window"), continuation: u32("h2-max-continuation-frames"),
		glitch: u32("h2-max-glitch-count"), connWindow: u32("h2-initial-connection-window"),
		streams: u32("h2-max-concurrent-streams"), shrink: u32("h2-stream-shrink-ratio"),
		rstLifetime: u64("h2-max-rst-stream-lifetime"), rstAbusive: u64("h2-max-rst-stream-abusive-lifetime"),
		rstEmitted: u64("h2-max-rst-stream-emitted-lifetime"), listSize: u32("h2-max-header-list-size"),
		tableSize: u32("h2-max-header-table-size"), fields: u32("h2-max-header-fields"),
		idle: u32("h2-stream-idle-timeout-seconds"), graceful: u32("h2-graceful-shutdown-deadline-seconds"),
	}
}

var errNothingToUpdate = errors.New("nothing to update: give at least one flag besides --address")

func listenerUpdateBuilder(proto string) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		if len(v.set) <= 1 {
			return nil, errNothingToUpdate
		}
		u32 := func(name string) *uint32 {
			if !v.has(name) {
				return nil
			}
			return ptr(v.u32(name, 0))
		}
		boolean := func(name string) *bool {
			if !v.has(name) {
				return nil
			}
			return ptr(v.flag(name))
		}
		answers, err := answerFlags(v)
		if err != nil {
			return nil, err
		}
		switch proto {
		case "http":
			h := h2PatchFrom(v)
			return &command.Request{RequestType: &command.Request_UpdateHttpListener{UpdateHttpListener: &command.UpdateHttpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				StickyName: v.optStr("sticky-name"), FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"),
				ConnectTimeout: u32("connect-timeout"), RequestTimeout: u32("request-timeout"), Answers: answers,
				SozuIdHeader:            v.optStr("sozu-id-header"),
				H2MaxRstStreamPerWindow: h.rstPerWindow, H2MaxPingPerWindow: h.pingPerWindow,
				H2MaxSettingsPerWindow: h.settingsPerWindow, H2MaxEmptyDataPerWindow: h.emptyDataPerWindow,
				H2MaxWindowUpdateStream0PerWindow: h.wu0PerWindow, H2MaxContinuationFrames: h.continuation,
				H2MaxGlitchCount: h.glitch, H2InitialConnectionWindow: h.connWindow, H2MaxConcurrentStreams: h.streams,
				H2StreamShrinkRatio: h.shrink, H2MaxRstStreamLifetime: h.rstLifetime,
				H2MaxRstStreamAbusiveLifetime: h.rstAbusive, H2MaxRstStreamEmittedLifetime: h.rstEmitted,
				H2MaxHeaderListSize: h.listSize, H2MaxHeaderTableSize: h.tableSize, H2MaxHeaderFields: h.fields,
				H2StreamIdleTimeoutSeconds: h.idle, H2GracefulShutdownDeadlineSeconds: h.graceful,
			}}}, nil
		case "https":
			u := &command.UpdateHttpsListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				StickyName: v.optStr("sticky-name"), FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"),
				ConnectTimeout: u32("connect-timeout"), RequestTimeout: u32("request-timeout"), Answers: answers,
				StrictSniBinding: boolean("strict-sni-binding"), DisableHttp11: boolean("disable-http11"), Hsts: hstsFromFlags(v),
				SozuIdHeader: v.optStr("sozu-id-header"),
			}
			h := h2PatchFrom(v)
			u.H2MaxRstStreamPerWindow, u.H2MaxPingPerWindow = h.rstPerWindow, h.pingPerWindow
			u.H2MaxSettingsPerWindow, u.H2MaxEmptyDataPerWindow = h.settingsPerWindow, h.emptyDataPerWindow
			u.H2MaxWindowUpdateStream0PerWindow, u.H2MaxContinuationFrames = h.wu0PerWindow, h.continuation
			u.H2MaxGlitchCount, u.H2InitialConnectionWindow, u.H2MaxConcurrentStreams = h.glitch, h.connWindow, h.streams
			u.H2StreamShrinkRatio, u.H2MaxRstStreamLifetime = h.shrink, h.rstLifetime
			u.H2MaxRstStreamAbusiveLifetime, u.H2MaxRstStreamEmittedLifetime = h.rstAbusive, h.rstEmitted
			u.H2MaxHeaderListSize, u.H2MaxHeaderTableSize, u.H2MaxHeaderFields = h.listSize, h.tableSize, h.fields
			u.H2StreamIdleTimeoutSeconds, u.H2GracefulShutdownDeadlineSeconds = h.idle, h.graceful
			if v.has("alpn-protocols") {
				var alpn []string
				for p := range strings.SplitSeq(v.str("alpn-protocols"), ",") {
					alpn = append(alpn, strings.TrimSpace(p))
				}
				u.AlpnProtocols = &command.AlpnProtocols{Values: alpn}
			}
			return &command.Request{RequestType: &command.Request_UpdateHttpsListener{UpdateHttpsListener: u}}, nil
		default:
			return &command.Request{RequestType: &command.Request_UpdateTcpListener{UpdateTcpListener: &command.UpdateTcpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"), ConnectTimeout: u32("connect-timeout"),
			}}}, nil
		}
	}
}
