package h2c

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestBackendSettingsHonoured: the backend's SETTINGS govern what we send
// it (RFC 9113 §6.5.2): SETTINGS_HEADER_TABLE_SIZE 0 makes the first
// request block we send after our ACK start with a dynamic table size
// update to 0 (RFC 7541 §4.2, §6.3), and no block index anything, so that
// a decoder with no table reads them all; a SETTINGS_MAX_FRAME_SIZE raised lets DATA frames grow
// to it, never past it; SETTINGS_INITIAL_WINDOW_SIZE and a connection
// WINDOW_UPDATE let a body larger than the default windows go out whole.
func TestBackendSettingsHonoured(t *testing.T) {
	const maxFrame = 1 << 16
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var preface [len(http2.ClientPreface)]byte
			if _, err := io.ReadFull(c, preface[:]); err != nil {
				return err
			}
			fr := http2.NewFramer(c, c)
			fr.SetMaxReadFrameSize(maxFrame)
			fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
				http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrame},
				http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
			fr.WriteWindowUpdate(0, 1<<20)
			dec := hpack.NewDecoder(0, nil) // no dynamic table: what we said
			acked := false
			var block []byte
			blocks := 0
			var largest uint32
			body := map[uint32]int{}
			for answered := 0; answered < 3; {
				f, err := fr.ReadFrame()
				if err != nil {
					return err
				}
				endHeaders := false
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if f.IsAck() {
						acked = true
					} else {
						fr.WriteSettingsAck()
					}
				case *http2.HeadersFrame:
					if !acked {
						return fmt.Errorf("HEADERS before the ACK of our SETTINGS")
					}
					block = append(block[:0], f.HeaderBlockFragment()...)
					endHeaders = f.HeadersEnded()
				case *http2.ContinuationFrame:
					block = append(block, f.HeaderBlockFragment()...)
					endHeaders = f.HeadersEnded()
				case *http2.DataFrame:
					largest = max(largest, f.Length)
					body[f.StreamID] += len(f.Data())
					if f.StreamEnded() {
						answered++
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, EndHeaders: true, EndStream: true,
							BlockFragment: []byte{0x88}}) // :status 200
					}
				}
				if !endHeaders {
					continue
				}
				if blocks++; blocks == 1 && (len(block) == 0 || block[0] != 0x20) {
					return fmt.Errorf("first request block %x does not start with a table size update to 0", block[:min(len(block), 4)])
				}
				fields, err := dec.DecodeFull(block)
				if err != nil {
					return fmt.Errorf("a request block needs a dynamic table: %v", err)
				}
				if len(fields) < 5 {
					return fmt.Errorf("request fields %v", fields)
				}
			}
			if largest <= 16384 || largest > maxFrame {
				return fmt.Errorf("largest DATA frame %d, want above 16384 and at most %d", largest, maxFrame)
			}
			for id, n := range body {
				if n != 300_000 {
					return fmt.Errorf("stream %d: %d bytes of body", id, n)
				}
			}
			return nil
		}()
	}()
	p := poolTo(ln, Options{})
	defer p.Close()
	body := strings.Repeat("x", 300_000) // past 64 KiB: the default windows would hold it
	for i := range 3 {
		got, err := exchange(p, fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: h\r\nX-Same: 1\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body))
		if err != nil || !strings.HasPrefix(got, "HTTP/1.1 200") {
			select {
			case berr := <-errc:
				t.Fatalf("exchange %d: %q, %v; the backend: %v", i, got, err, berr)
			case <-time.After(time.Second):
			}
			t.Fatalf("exchange %d: %q, %v", i, got, err)
		}
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend did not finish")
	}
}
