package h2

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

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
		nc, fr, sf := rawPreface(t, ts.addr)
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

// TestTableSizeUpdateAfterAField: a dynamic table size update may only
// begin a header block (RFC 7541 §4.2, §6.3; RFC 9113 §4.3.1): one after
// a field representation, even with the dynamic table empty (x/net's
// decoder only refuses it when the table holds entries), is a decoding
// error, a connection error COMPRESSION_ERROR (RFC 9113 §4.3). Two
// updates at the beginning of a block (the smallest size, then the
// final one, §4.2) are allowed.
func TestTableSizeUpdateAfterAField(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	// :method GET (static index 2), then the rest as literals never
	// added to the table, which stays empty.
	rest := literalBlock(":scheme", "http", ":path", "/", ":authority", "localhost")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	update4096 := []byte{0x3f, 0xe1, 0x1f}
	for _, c := range []struct {
		name   string
		frags  [][]byte // the block's HEADERS fragment, then CONTINUATIONs
		refuse bool
	}{
		{"at the end", [][]byte{cat([]byte{0x82}, rest, update4096)}, true},
		{"between fields", [][]byte{cat([]byte{0x82, 0x20}, rest)}, true},
		{"in a CONTINUATION after fields", [][]byte{cat([]byte{0x82}, rest), {0x20}}, true},
		{"after a literal's Huffman-coded value", [][]byte{cat(rest, []byte{0x02, 0x83, 0xc5, 0x83, 0x7f}, update4096)}, true},
		{"two at the beginning", [][]byte{cat([]byte{0x20}, update4096, []byte{0x82}, rest)}, false},
		{"at the beginning of a CONTINUATION-split block", [][]byte{{0x3f}, cat([]byte{0xe1, 0x1f, 0x82}, rest)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.frags[0], EndStream: true, EndHeaders: len(c.frags) == 1})
			for i, f := range c.frags[1:] {
				rc.fr.WriteContinuation(1, i == len(c.frags)-2, f)
			}
			if c.refuse {
				rc.expectGoAway(http2.ErrCodeCompression)
				return
			}
			rc.awaitEnd(1)
		})
	}
}

// literalBlock encodes fields as literals without indexing (RFC 7541
// §6.2.2), leaving the peer's dynamic table as it is.
func literalBlock(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = appendHpackField(b, []byte(kv[i]), []byte(kv[i+1]))
	}
	return b
}

// TestUpdateScanFollowsBlocks: the size update scan never takes a block
// x/net's encoder wrote (indexed fields, literals with and without
// indexing, Huffman-coded or not, lengths past their prefixes, size
// updates at the beginning) for one with a late update, however the
// block is split into fragments, and it finds one appended to any of them.
func TestUpdateScanFollowsBlocks(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(4096)
	long := strings.Repeat("x", 300)
	for i := range 200 {
		buf.Reset()
		if i%7 == 0 {
			enc.SetMaxDynamicTableSize(uint32(1024 * (i % 5)))
		}
		fields := []hpack.HeaderField{
			{Name: ":method", Value: "GET"}, {Name: ":path", Value: fmt.Sprintf("/%d", i)},
			{Name: "x-long-" + long[:i%200], Value: long[:i]}, {Name: "cookie", Value: "a=b", Sensitive: i%2 == 0},
			{Name: "accept", Value: "\x80\xff" + long[:i%130]},
		}
		for _, f := range fields {
			enc.WriteField(f)
		}
		block := buf.Bytes()
		for split := 0; split <= len(block); split += 1 + len(block)/17 {
			var u updateScan
			if u.feed(block[:split]) || u.feed(block[split:]) {
				t.Fatalf("block %d split at %d: a late size update found in %x", i, split, block)
			}
			if !u.feed([]byte{0x20}) {
				t.Fatalf("block %d split at %d: a size update after it not found", i, split)
			}
		}
	}
}
