package health

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxH2CRead bounds what an h2c probe reads of the backend's frames before
// it has the response head; maxH2CHeaders bounds the decoded head.
const (
	maxH2CRead    = 64 << 10
	maxH2CHeaders = 16 << 10
)

// H2CRequest returns the bytes of the HTTP/2 probe of uri at addr, for a
// cluster whose backends speak h2c with prior knowledge (http2 = true,
// as its requests go): the connection preface, a SETTINGS frame turning
// server push off (its header blocks would have to go through the HPACK
// decoder too) and one HEADERS frame on stream 1 ending the stream,
// carrying a GET of uri with :authority set to the backend's address and
// the fields of the HTTP/1.1 probe (Request). Built from the
// configuration only.
func H2CRequest(uri, addr string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", uri},
		{"user-agent", userAgent}, {"accept", "*/*"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	return out.Bytes()
}

// probeH2C sends the h2c probe on c and reads frames until the response
// head of stream 1, whose :status must be what cfg expects. SETTINGS
// from the backend are acknowledged; frames larger than the default
// SETTINGS_MAX_FRAME_SIZE the probe advertises (RFC 9113 §4.2: not even
// allocated), a GOAWAY that leaves stream 1 unprocessed (§6.8), a reset
// of stream 1, a malformed frame, a 101 (§8.6) or more than maxH2CRead
// bytes before the head fail.
func probeH2C(c net.Conn, cfg Config, addr string) error {
	if _, err := c.Write(H2CRequest(cfg.URI, addr)); err != nil {
		return &ProbeError{addr, "write", err}
	}
	lr := &io.LimitedReader{R: c, N: maxH2CRead}
	fr := http2.NewFramer(c, lr)
	fr.SetMaxReadFrameSize(16384)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = maxH2CHeaders
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			switch {
			case lr.N <= 0:
				err = fmt.Errorf("no response head in the first %d bytes of frames", maxH2CRead)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				err = errors.New("connection closed before the response head")
			}
			return &ProbeError{addr, "read", err}
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return &ProbeError{addr, "write", err}
				}
			}
		case *http2.GoAwayFrame:
			// A graceful GOAWAY that covers stream 1 still answers it.
			if f.ErrCode != http2.ErrCodeNo || f.LastStreamID < 1 {
				return &ProbeError{addr, "read", fmt.Errorf("GOAWAY %v (last stream %d) before the response head", f.ErrCode, f.LastStreamID)}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return &ProbeError{addr, "read", fmt.Errorf("stream reset (%v) before the response head", f.ErrCode)}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			code, err := h2cStatus(f.PseudoValue("status"))
			if err != nil {
				return &ProbeError{addr, "status", err}
			}
			if code == 101 {
				return &ProbeError{addr, "status", errors.New("HTTP/2 :status 101, which RFC 9113 §8.6 forbids")}
			}
			if code < 200 {
				continue // an interim response: the final head follows
			}
			if !statusOK(code, cfg.Expected) {
				return &ProbeError{addr, "status", fmt.Errorf("got %d, want %s", code, expectation(cfg.Expected))}
			}
			return nil
		}
	}
}

// h2cStatus parses a :status value: three digits, 100 to 599.
func h2cStatus(v string) (int, error) {
	code, err := strconv.Atoi(v)
	if len(v) != 3 || err != nil || code < 100 || code > 599 {
		return 0, fmt.Errorf("HTTP/2 :status %q is not three digits 100-599", v)
	}
	return code, nil
}
