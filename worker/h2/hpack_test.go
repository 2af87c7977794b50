package h2

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// decodeBlock decodes a header block with a fresh x/net decoder: a block
// that leaned on a dynamic table would fail there.
func decodeBlock(t testing.TB, block []byte) []hpack.HeaderField {
	t.Helper()
	dec := hpack.NewDecoder(4096, nil)
	dec.SetMaxStringLength(1 << 20)
	fields, err := dec.DecodeFull(block)
	if err != nil {
		t.Fatalf("decoding %x: %v", block, err)
	}
	return fields
}

// responseBlock reads frames until the HEADERS of stream id and returns a
// copy of its header block fragment.
func (rc *rawClient) responseBlock(id uint32) []byte {
	rc.t.Helper()
	var block []byte
	rc.waitFor("response HEADERS", func(f http2.Frame) bool {
		hf, ok := f.(*http2.HeadersFrame)
		if ok && hf.StreamID == id {
			block = append(block, hf.HeaderBlockFragment()...)
		}
		return ok && hf.StreamID == id
	})
	return block
}

// TestHeaderBlocksStateless: response heads reach a real client as they
// were given, each block decodable on its own (no dynamic table), the same
// size every time; credentials never indexed; a status of the static table
// in one byte.
func TestHeaderBlocksStateless(t *testing.T) {
	var n atomic.Int64
	long := strings.Repeat("v", 300) // a length past the 7-bit prefix
	statuses := []int{200, 404, 201, 503, 204}
	h := HandlerFunc(func(s *Stream) {
		i := n.Add(1)
		s.WriteHeader(statuses[int(i-1)%len(statuses)], []HeaderField{
			{Name: []byte("content-type"), Value: []byte("text/plain")},
			{Name: []byte("x-request-id"), Value: []byte(fmt.Sprintf("01JEXAMPLEREQUESTID%07d", i))},
			{Name: []byte("set-cookie"), Value: []byte("sid=secret; Secure")},
			{Name: []byte("x-long"), Value: []byte(long)},
			{Name: []byte("www-authenticate"), Value: []byte("Basic")},
		})
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	sizes := map[int]int{}
	for i := range 10 {
		id := uint32(2*i + 1)
		rc.get(id, true)
		block := rc.responseBlock(id)
		fields := decodeBlock(t, block)
		status := statuses[i%len(statuses)]
		want := []hpack.HeaderField{
			{Name: ":status", Value: fmt.Sprint(status)},
			{Name: "content-type", Value: "text/plain"},
			{Name: "x-request-id", Value: fmt.Sprintf("01JEXAMPLEREQUESTID%07d", i+1)},
			{Name: "set-cookie", Value: "sid=secret; Secure", Sensitive: true},
			{Name: "x-long", Value: long},
			{Name: "www-authenticate", Value: "Basic"},
		}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Fatalf("response %d:\n got %v\nwant %v", i, fields, want)
		}
		if status == 200 && block[0] != 0x88 {
			t.Errorf(":status 200 as %#x, want the static index 0x88", block[0])
		}
		if s, seen := sizes[status]; seen && s != len(block) {
			t.Errorf("status %d: block of %d bytes, then %d", status, s, len(block))
		}
		sizes[status] = len(block)
	}
}

// TestTableSizeUpdateAfterSettings: when the peer changes
// SETTINGS_HEADER_TABLE_SIZE, the next header block starts with a dynamic
// table size update to 0 (RFC 7541 §4.2), and the one after does not.
func TestTableSizeUpdateAfterSettings(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 256})
	for i, want := range []bool{true, false} {
		id := uint32(2*i + 1)
		rc.get(id, true)
		block := rc.responseBlock(id)
		if got := block[0] == 0x20; got != want {
			t.Errorf("block %d starts with %#x; size update to 0 expected: %v", i, block[0], want)
		}
		dec := hpack.NewDecoder(256, nil)
		dec.SetAllowedMaxDynamicTableSize(256)
		if _, err := dec.DecodeFull(block); err != nil {
			t.Errorf("block %d: %v", i, err)
		}
	}
}

// TestStaticNameIndexComplete checks staticNameIndex against x/net's own
// copy of the static table (RFC 7541 Appendix A): every regular name of
// the table is found, at the index of its first entry.
func TestStaticNameIndexComplete(t *testing.T) {
	seen := map[string]bool{}
	for i := uint64(1); i <= 61; i++ {
		// A literal without indexing whose name is static entry i.
		block := appendHpackString(appendHpackInt(nil, hpLiteral, 4, i), []byte("v"))
		f := decodeBlock(t, block)[0]
		if strings.HasPrefix(f.Name, ":") || seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		if got := staticNameIndex([]byte(f.Name)); got != int(i) {
			t.Errorf("staticNameIndex(%q) = %d, want %d", f.Name, got, i)
		}
	}
	if len(seen) != 47 {
		t.Errorf("%d regular names in the static table, want 47 (entries 15 to 61)", len(seen))
	}
	for _, name := range []string{"x-request-id", "content-security-policy", "dates", "server-timing", ""} {
		if i := staticNameIndex([]byte(name)); i != 0 {
			t.Errorf("staticNameIndex(%q) = %d, want 0", name, i)
		}
	}
}

// TestHpackIntegers: lengths around each prefix boundary (RFC 7541 §5.1)
// decode to what was encoded.
func TestHpackIntegers(t *testing.T) {
	for _, n := range []int{0, 1, 14, 15, 16, 126, 127, 128, 254, 255, 256, 16383, 16384, 1 << 20} {
		name := bytes.Repeat([]byte("n"), max(n, 1))
		value := bytes.Repeat([]byte("v"), n)
		f := decodeBlock(t, appendHpackField(nil, name, value))[0]
		if f.Name != string(name) || f.Value != string(value) {
			t.Errorf("length %d: got name %d bytes, value %d bytes", n, len(f.Name), len(f.Value))
		}
	}
	for code := 100; code <= 999; code++ {
		f := decodeBlock(t, appendStatus(nil, code))[0]
		if f.Name != ":status" || f.Value != fmt.Sprint(code) {
			t.Fatalf("status %d decodes as %v", code, f)
		}
	}
}

// FuzzHeaderBlockEncoding: any field a stream accepts (appendResponseField)
// decodes, alone, to itself, never indexed exactly when it is sensitive.
func FuzzHeaderBlockEncoding(f *testing.F) {
	f.Add([]byte("Content-Type"), []byte("text/html"), 200)
	f.Add([]byte("set-cookie"), []byte("a=b"), 503)
	f.Add([]byte("x-"+strings.Repeat("a", 200)), []byte(strings.Repeat("\x80", 130)), 101)
	f.Fuzz(func(t *testing.T, name, value []byte, status int) {
		arena, refs, ok := appendResponseField(nil, nil, name, value)
		if !ok {
			return
		}
		status = 100 + (status%900+900)%900
		r := refs[0]
		n, v := arena[r.off:r.off+r.nlen], arena[r.off+r.nlen:r.off+r.nlen+r.vlen]
		block := appendHpackField(appendStatus(nil, status), n, v)
		fields := decodeBlock(t, block)
		want := []hpack.HeaderField{{Name: ":status", Value: fmt.Sprint(status)},
			{Name: string(n), Value: string(v), Sensitive: sensitiveField(n)}}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", fields, want)
		}
	})
}

// TestHeaderTableSizeKnob: h2_max_header_table_size is upstream's, a cap on
// the table the peer's SETTINGS_HEADER_TABLE_SIZE grants our encoder
// (default 65536); the table we grant the peer's encoder is RFC 7541's
// 4096, advertised whatever the knob says, and a dynamic table size update
// beyond it is a COMPRESSION_ERROR.
func TestHeaderTableSizeKnob(t *testing.T) {
	if got := DefaultLimits().MaxHeaderTableSize; got != 65536 {
		t.Errorf("default MaxHeaderTableSize %d, want upstream's 65536", got)
	}
	for _, lim := range []Limits{{}, {MaxHeaderTableSize: 1 << 20}, {MaxHeaderTableSize: 256}} {
		ts := startServer(t, lim, helloHandler, nil, nil)
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fr := http2.NewFramer(nc, nc)
		io.WriteString(nc, http2.ClientPreface)
		fr.WriteSettings()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			t.Fatalf("first frame %v", f)
		}
		if v, ok := sf.Value(http2.SettingHeaderTableSize); ok && v != 4096 {
			t.Errorf("MaxHeaderTableSize %d: SETTINGS_HEADER_TABLE_SIZE %d advertised, want 4096", lim.MaxHeaderTableSize, v)
		}
		fr.WriteSettingsAck()
		// A size update to 8192 (RFC 7541 §6.3: 001xxxxx, 8192 = 31 + 8161),
		// then an indexed :method GET.
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		enc.SetMaxDynamicTableSizeLimit(8192)
		enc.SetMaxDynamicTableSize(8192)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "a"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if b.Bytes()[0]&0xe0 != 0x20 {
			t.Fatalf("block does not start with a size update: %x", b.Bytes())
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndStream: true, EndHeaders: true})
		var code http2.ErrCode = 1 << 31
		for code == 1<<31 {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("MaxHeaderTableSize %d: %v before GOAWAY", lim.MaxHeaderTableSize, err)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				code = f.ErrCode
			case *http2.HeadersFrame:
				t.Fatalf("MaxHeaderTableSize %d: a table of 8192 accepted", lim.MaxHeaderTableSize)
			}
		}
		if code != http2.ErrCodeCompression {
			t.Errorf("MaxHeaderTableSize %d: GOAWAY %v, want COMPRESSION_ERROR", lim.MaxHeaderTableSize, code)
		}
		nc.Close()
	}
}
