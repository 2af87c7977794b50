package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestHTTP2AbuseBounded attacks one sozu worker (sandboxed, default h2_*
// limits) with each HTTP/2 abuse class from many connections at once,
// with a raw frame client that keeps sending until the worker ends the
// connection: every attacking connection gets GOAWAY with the class's code
// within a few seconds (the budget is enforced, not the attack merely
// absorbed), a well-behaved client on another connection is served
// meanwhile, and the worker's RSS grows by a bounded amount whatever the
// attack's length.
func TestHTTP2AbuseBounded(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certPath, keyPath := ca.issue(t, dir, "c", "a.test") // clients verify nothing: SNI a.test picks it
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	addr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	startProxy(t, dir, sock, fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[3]q
key = %[4]q

[clusters.app]
protocol = "http"
backends = [ { address = %[5]q } ]
frontends = [ { address = %[2]q, hostname = "*" } ]
`, sock, addr, certPath, keyPath, origin.addr), addr)
	good := func() error {
		tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+addr+"/good", nil)
		req.Host = "a.test"
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "ok" {
			return fmt.Errorf("%s %d %q", resp.Proto, resp.StatusCode, body)
		}
		return nil
	}
	sozutest.WaitFor(t, 20*time.Second, "the listener serves HTTP/2", func() bool { return good() == nil })
	pid := workerPIDs(t, sock)[0]
	rss0 := vmRSS(t, pid)
	budget := 64 << 10 // KiB, over all the classes
	if raceEnabled {
		budget *= 4 // the race detector's shadow memory
	}

	big := make([]byte, 16384)
	// huffBomb is a literal field whose Huffman-coded value, 43 750 bytes
	// on the wire, decodes to 70 000 (the default header list is 64 KiB).
	huffBomb := []byte{0x00, 0x03, 'x', '-', 'h'}
	val := hpack.AppendHuffmanString(nil, strings.Repeat("0", 70000))
	huffBomb = append(huffBomb, 0x80|0x7f) // H, then the length: 7-bit prefix integer (RFC 7541 §5.1)
	n := len(val) - 127
	for ; n >= 128; n >>= 7 {
		huffBomb = append(huffBomb, byte(n&0x7f|0x80))
	}
	huffBomb = append(append(huffBomb, byte(n)), val...)
	calm := http2.ErrCodeEnhanceYourCalm
	for _, tt := range []struct {
		name string
		code http2.ErrCode
		// open runs once per connection; step then runs until the
		// connection ends, each call writing a batch of frames.
		open func(a *abuser)
		step func(a *abuser)
	}{
		{"rapid reset (CVE-2023-44487)", calm, nil, func(a *abuser) {
			id := a.nextID()
			a.headers(id, true)
			a.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}},
		{"CONTINUATION flood, empty fragments (CVE-2024-27316)", calm,
			func(a *abuser) {
				a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("GET")})
			},
			func(a *abuser) { a.fr.WriteContinuation(1, false, nil) }},
		{"CONTINUATION flood, full fragments", calm,
			func(a *abuser) {
				a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("GET")})
			},
			func(a *abuser) { a.fr.WriteContinuation(1, false, big) }},
		{"MadeYouReset: WINDOW_UPDATE of 0 (CVE-2025-8671)", calm, nil, func(a *abuser) {
			id := a.nextID()
			a.headers(id, true)
			a.fr.WriteWindowUpdate(id, 0)
		}},
		{"MadeYouReset: DATA past END_STREAM", calm, nil, func(a *abuser) {
			id := a.nextID()
			a.headers(id, true)
			a.fr.WriteData(id, false, []byte("x"))
		}},
		{"zero-length HEADERS", calm, nil, func(a *abuser) {
			a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: a.nextID(), EndHeaders: true, EndStream: true})
		}},
		{"PING", calm, nil, func(a *abuser) { a.fr.WritePing(false, [8]byte{}) }},
		{"SETTINGS", calm, nil, func(a *abuser) { a.fr.WriteSettings() }},
		{"SETTINGS with 2700 parameters", calm, nil, func(a *abuser) {
			s := make([]http2.Setting, 2700)
			for i := range s {
				s[i] = http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}
			}
			a.fr.WriteSettings(s...)
		}},
		{"empty DATA", calm, func(a *abuser) { a.headers(1, false) }, func(a *abuser) { a.fr.WriteData(1, false, nil) }},
		{"empty DATA with maximal padding", calm, func(a *abuser) { a.headers(1, false) },
			func(a *abuser) { a.fr.WriteDataPadded(1, false, nil, big[:255]) }},
		{"stream-0 WINDOW_UPDATE", calm, nil, func(a *abuser) { a.fr.WriteWindowUpdate(0, 1) }},
		{"RST_STREAM on a closed stream", calm, func(a *abuser) { a.headers(1, true) },
			func(a *abuser) { a.fr.WriteRSTStream(1, http2.ErrCodeCancel) }},
		{"PRIORITY", calm, nil, func(a *abuser) { a.fr.WritePriority(1, http2.PriorityParam{Weight: 1}) }},
		{"PRIORITY_UPDATE", calm, nil, func(a *abuser) { a.fr.WritePriorityUpdate(1, "u=1") }},
		{"unknown frame types", calm, nil, func(a *abuser) { a.fr.WriteRawFrame(0x20, 0, 0, nil) }},
		{"DATA on a stream the proxy reset", calm,
			func(a *abuser) {
				a.headers(1, false)
				a.fr.WriteWindowUpdate(1, 0) // stream error: the proxy resets stream 1
			},
			func(a *abuser) { a.fr.WriteData(1, false, big) }},
		{"HPACK bomb: one large field referenced thousands of times", calm, nil, func(a *abuser) {
			id := a.nextID()
			blk := a.block("GET", "x-bomb", strings.Repeat("b", 4000))
			a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk})
			a.fr.WriteContinuation(id, true, bytes.Repeat([]byte{0x80 | 62}, 16000))
		}},
		{"HPACK bomb: a Huffman-coded value decoding past the header list size", calm, nil, func(a *abuser) {
			id := a.nextID()
			blk := append(a.block("GET"), huffBomb...)
			a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk[:16384]})
			for off := 16384; off < len(blk); off += 16384 {
				a.fr.WriteContinuation(id, off+16384 >= len(blk), blk[off:min(off+16384, len(blk))])
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const conns = 20
			var wg sync.WaitGroup
			ends := make([]string, conns)
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ends[i] = abuse(addr, tt.open, tt.step, tt.code)
				}()
			}
			t0 := time.Now()
			err := good()
			lat := time.Since(t0)
			wg.Wait()
			if err != nil {
				t.Errorf("a well-behaved client during the attack: %v", err)
			}
			for i, e := range ends {
				if e != "" {
					t.Errorf("attacking connection %d: %s", i, e)
				}
			}
			grown := vmRSS(t, pid) - rss0
			t.Logf("well-behaved client served in %v; worker RSS +%d KiB", lat.Round(time.Millisecond), grown)
			if grown > budget {
				t.Fatalf("worker RSS grew by %d KiB (budget %d KiB)", grown, budget)
			}
		})
	}
}

// abuser is one attacking HTTP/2 connection (TLS, ALPN h2) whose writes
// are coalesced as a real attacker's would be.
type abuser struct {
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
	id  uint32
}

func (a *abuser) nextID() uint32 { a.id += 2; return a.id - 2 }

// block encodes a request header block with extra fields.
func (a *abuser) block(method string, extra ...string) []byte {
	a.buf.Reset()
	f := append([]string{":method", method, ":scheme", "https", ":authority", "a.test", ":path", "/abuse"}, extra...)
	for i := 0; i+1 < len(f); i += 2 {
		a.enc.WriteField(hpack.HeaderField{Name: f[i], Value: f[i+1]})
	}
	return bytes.Clone(a.buf.Bytes())
}

func (a *abuser) headers(id uint32, end bool) {
	a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: a.block("GET"), EndStream: end, EndHeaders: true})
}

// abuse runs one attacking connection until the proxy ends it, 10 s at
// most, and returns "" if it ended with a GOAWAY carrying code, or what
// happened instead.
func abuse(addr string, open, step func(*abuser), code http2.ErrCode) string {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	bw := bufio.NewWriterSize(c, 16<<10)
	a := &abuser{fr: http2.NewFramer(bw, c), id: 1}
	a.fr.AllowIllegalWrites = true
	a.enc = hpack.NewEncoder(&a.buf)
	io.WriteString(bw, http2.ClientPreface)
	a.fr.WriteSettings()
	var done atomic.Bool
	end := make(chan string, 1)
	go func() {
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				end <- "no GOAWAY: " + err.Error()
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				if g.ErrCode != code {
					end <- fmt.Sprintf("GOAWAY %v (last stream %d), want %v", g.ErrCode, g.LastStreamID, code)
				} else {
					end <- ""
				}
				return
			}
		}
	}()
	go func() {
		if open != nil {
			open(a)
		}
		for !done.Load() {
			step(a)
			if bw.Buffered() > 0 && bw.Flush() != nil {
				return // the proxy closed the connection
			}
		}
	}()
	r := <-end
	done.Store(true)
	return r
}
