package http1

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type chunkedCase struct {
	name      string
	in        string
	body      string
	trailers  string // "Name: value\n" per trailer
	canonical string // Reencode output
	consumed  int    // -1: all of in
}

var goodChunked = []chunkedCase{
	{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", "", "5\r\nhello\r\n0\r\n\r\n", -1},
	{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", "", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", -1},
	{"empty body", "0\r\n\r\n", "", "", "0\r\n\r\n", -1},
	{"leading zeros, upper-case hex, extensions",
		"00005;ext=val ; b = \"q\\\"x\" ;c\r\nhello\r\n1A;d=\"\"\r\nabcdefghijklmnopqrstuvwxyz\r\n000;last\r\n\r\n",
		"helloabcdefghijklmnopqrstuvwxyz", "",
		"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", -1},
	{"BWS before extension", "3 \t;x\r\nabc\r\n0\r\n\r\n", "abc", "", "3\r\nabc\r\n0\r\n\r\n", -1},
	{"data holding CRLF and hex", "7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n", "\r\n0\r\n\r\n", "", "7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n", -1},
	{"trailers, forbidden ones dropped",
		"3\r\nabc\r\n0\r\nX-Checksum:  abc \t\r\nContent-Length: 3\r\nX-Empty:\r\nTrailer: x\r\n\r\n",
		"abc", "X-Checksum: abc\nContent-Length: 3\nX-Empty: \nTrailer: x\n",
		"3\r\nabc\r\n0\r\nX-Checksum: abc\r\nX-Empty: \r\n\r\n", -1},
	{"obs-text in trailer", "0\r\nX-A: caf\xe9\r\n\r\n", "", "X-A: caf\xe9\n", "0\r\nX-A: caf\xe9\r\n\r\n", -1},
	{"next message follows", "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hi", "", "2\r\nhi\r\n0\r\n\r\n", 12},
}

// chunkedResult is what decoding an input yields.
type chunkedResult struct {
	body      string
	trailers  string
	canonical string
	consumed  int
	done      bool
	err       string
}

func trailerString(fs []Field) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	return b.String()
}

// decodePieces decodes pieces in order with Feed and returns the result.
func decodePieces(pieces ...[]byte) chunkedResult {
	var d ChunkedDecoder
	var res chunkedResult
	var body []byte
	for _, p := range pieces {
		for len(p) > 0 && !d.Done() {
			data, n, err := d.Feed(p)
			body = append(body, data...)
			res.consumed += n
			p = p[n:]
			if err != nil {
				res.err = err.Error()
				res.body = string(body)
				return res
			}
		}
	}
	res.body, res.done, res.trailers = string(body), d.Done(), trailerString(d.Trailers())
	return res
}

// reencodePieces re-encodes pieces in order and returns the result.
func reencodePieces(pieces ...[]byte) chunkedResult {
	var d ChunkedDecoder
	var res chunkedResult
	var out []byte
	for _, p := range pieces {
		var n int
		var err error
		out, n, err = d.Reencode(out, p)
		res.consumed += n
		if err != nil {
			res.err = err.Error()
			break
		}
	}
	res.canonical, res.done = string(out), d.Done()
	if res.err == "" {
		res.trailers = trailerString(d.Trailers())
	}
	return res
}

// decodeInto decodes pieces with Decode into a dst of dstLen bytes at a time.
func decodeInto(dstLen int, pieces ...[]byte) chunkedResult {
	var d ChunkedDecoder
	var res chunkedResult
	var body []byte
	dst := make([]byte, dstLen)
	for _, p := range pieces {
		for len(p) > 0 && !d.Done() {
			nDst, nSrc, err := d.Decode(dst, p)
			body = append(body, dst[:nDst]...)
			res.consumed += nSrc
			p = p[nSrc:]
			if err != nil {
				res.err = err.Error()
				res.body = string(body)
				return res
			}
			if nDst == 0 && nSrc == 0 {
				break
			}
		}
	}
	res.body, res.done, res.trailers = string(body), d.Done(), trailerString(d.Trailers())
	return res
}

func bytewise(in []byte) [][]byte {
	out := make([][]byte, len(in))
	for i := range in {
		out[i] = in[i : i+1]
	}
	return out
}

func TestChunkedDecodeEverySplit(t *testing.T) {
	for _, tc := range goodChunked {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			want := chunkedResult{body: tc.body, trailers: tc.trailers, consumed: tc.consumed, done: true}
			if want.consumed < 0 {
				want.consumed = len(in)
			}
			wantRe := chunkedResult{canonical: tc.canonical, trailers: tc.trailers, consumed: want.consumed, done: true}
			check := func(how string, got, want chunkedResult) {
				t.Helper()
				if got != want {
					t.Fatalf("%s\n got %+v\nwant %+v", how, got, want)
				}
			}
			check("Feed at once", decodePieces(in), want)
			check("Feed byte by byte", decodePieces(bytewise(in)...), want)
			check("Decode into 1-byte dst", decodeInto(1, in), want)
			check("Reencode at once", reencodePieces(in), wantRe)
			check("Reencode byte by byte", reencodePieces(bytewise(in)...), wantRe)
			checkReencodeGrowth(t, bytewise(in)...)
			for i := 0; i <= len(in); i++ {
				a, b := in[:i:i], in[i:]
				check(fmt.Sprintf("Feed split at %d", i), decodePieces(a, b), want)
				check(fmt.Sprintf("Decode split at %d", i), decodeInto(7, a, b), want)
				check(fmt.Sprintf("Reencode split at %d", i), reencodePieces(a, b), wantRe)
			}
			// The canonical form is a fixed point.
			check("Reencode of canonical", reencodePieces([]byte(tc.canonical)),
				chunkedResult{canonical: tc.canonical, trailers: trailerString(keptTrailers(tc.trailers)), consumed: len(tc.canonical), done: true})
		})
	}
}

// keptTrailers parses a trailers string and keeps the forwarded ones.
func keptTrailers(s string) []Field {
	var out []Field
	for _, line := range strings.Split(s, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if ok && AllowedTrailer([]byte(name)) {
			out = append(out, Field{Name: []byte(name), Value: []byte(value)})
		}
	}
	return out
}

var badChunked = []struct {
	name, in string
}{
	{"leading SP", " 5\r\nhello\r\n0\r\n\r\n"},
	{"trailing SP without extension", "5 \r\nhello\r\n0\r\n\r\n"},
	{"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
	{"CR CR after size", "5\r\rhello\r\n0\r\n\r\n"},
	{"non-hex size", "g\r\n"},
	{"negative size", "-1\r\n"},
	{"0x prefix", "0x5\r\nhello\r\n"},
	{"plus sign", "+5\r\nhello\r\n"},
	{"empty size line", "\r\nhello\r\n"},
	{"17 digits", "00000000000000005\r\nhello\r\n"},
	{"size 2^62", "4000000000000000\r\n"},
	{"size 2^64-1", "ffffffffffffffff\r\n"},
	{"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n"},
	{"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
	{"CR CR after data", "5\r\nhello\r\r0\r\n\r\n"},
	{"empty extension", "5;\r\nhello\r\n"},
	{"extension without name", "5;=a\r\nhello\r\n"},
	{"extension without value", "5;a=\r\nhello\r\n"},
	{"BWS before CRLF", "5;a \r\nhello\r\n"},
	{"BWS after value before CRLF", "5;a=b \r\nhello\r\n"},
	{"CR in quoted value", "5;a=\"b\r\nhello\r\n"},
	{"text after quoted value", "5;a=\"b\"c\r\nhello\r\n"},
	{"two tokens in value", "5;a=b c\r\nhello\r\n"},
	{"NUL in extension", "5;a\x00\r\nhello\r\n"},
	{"extension too long", "5;a=" + strings.Repeat("b", DefaultMaxChunkExtBytes) + "\r\nhello\r\n"},
	{"trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n"},
	{"trailer starting with SP", "0\r\n X: a\r\n\r\n"},
	{"trailer space before colon", "0\r\nX : a\r\n\r\n"},
	{"trailer bare LF", "0\r\nX: a\nY: b\r\n\r\n"},
	{"trailer NUL", "0\r\nX: \x00\r\n\r\n"},
	{"trailer bare CR", "0\r\nX: a\rb\r\n\r\n"},
	{"trailer empty name", "0\r\n: a\r\n\r\n"},
	{"trailer without colon", "0\r\nX\r\n\r\n"},
	{"final bare LF", "0\r\n\n"},
	{"final CR CR", "0\r\n\r\r"},
	{"too many trailers", "0\r\n" + strings.Repeat("X: a\r\n", DefaultMaxTrailerFields+1) + "\r\n"},
	{"trailer section too large", "0\r\nX: " + strings.Repeat("a", DefaultMaxTrailerBytes) + "\r\n\r\n"},
}

func TestChunkedRejects(t *testing.T) {
	for _, tc := range badChunked {
		t.Run(tc.name, func(t *testing.T) {
			for _, resp := range []bool{false, true} {
				d := ChunkedDecoder{Response: resp}
				var err error
				src := []byte(tc.in)
				for len(src) > 0 && err == nil && !d.Done() {
					var n int
					_, n, err = d.Feed(src)
					src = src[n:]
				}
				want := 400
				if resp {
					want = 502
				}
				var e *Error
				if !errors.As(err, &e) || e.Status != want {
					t.Fatalf("Feed(%q), response=%v: %v, want status %d", tc.in, resp, err, want)
				}
				if _, _, again := d.Feed([]byte("0\r\n\r\n")); again != err {
					t.Fatalf("after an error Feed returned %v, want the same error", again)
				}
				// Byte by byte reaches the same verdict.
				if got := decodePieces(bytewise([]byte(tc.in))...); got.err != err.Error() && !resp {
					t.Fatalf("byte by byte: %q, at once: %q", got.err, err)
				}
			}
		})
	}
}

func TestChunkedIncomplete(t *testing.T) {
	for _, in := range []string{"", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r\n", "5\r\nhello\r\n0\r\n", "0\r\nX: a\r\n", "0\r\n\r"} {
		got := decodePieces([]byte(in))
		if got.err != "" || got.done || got.consumed != len(in) {
			t.Errorf("%q: %+v, want all consumed, no error, not done", in, got)
		}
	}
}

func TestChunkedReset(t *testing.T) {
	var d ChunkedDecoder
	for i := range 3 {
		d.Reset()
		body := fmt.Sprintf("0\r\nX-Round: %d\r\n\r\n", i)
		if _, _, err := d.Feed([]byte(body)); err != nil || !d.Done() {
			t.Fatalf("round %d: %v, done %v", i, err, d.Done())
		}
		if got := trailerString(d.Trailers()); got != fmt.Sprintf("X-Round: %d\n", i) {
			t.Fatalf("round %d: trailers %q", i, got)
		}
	}
}

// TestChunkedReencodeHop: Reencode drops the trailers its message's
// Connection options name (Hop, any case, '_' for '-' either way), after
// the standard hop-by-hop ones, and Reset forgets Hop.
func TestChunkedReencodeHop(t *testing.T) {
	in := []byte("1\r\na\r\n0\r\nX-Hop: 1\r\nx-HOP: 2\r\nConnection: x\r\nX-Other: 3\r\nX-Keep: 4\r\n" +
		"x_hop: 5\r\nX-Under: 6\r\n\r\n")
	var d ChunkedDecoder
	d.Hop = [][]byte{[]byte("x-hop"), []byte("X-Other"), []byte("x_under")}
	out, n, err := d.Reencode(nil, in)
	if want := "1\r\na\r\n0\r\nX-Keep: 4\r\n\r\n"; err != nil || n != len(in) || string(out) != want {
		t.Fatalf("Reencode = %q, %d, %v; want %q", out, n, err, want)
	}
	d.Reset()
	if d.Hop != nil {
		t.Fatalf("Reset kept Hop %q", d.Hop)
	}
	out, _, _ = d.Reencode(nil, in)
	if want := "1\r\na\r\n0\r\nX-Hop: 1\r\nx-HOP: 2\r\nX-Other: 3\r\nX-Keep: 4\r\nx_hop: 5\r\nX-Under: 6\r\n\r\n"; string(out) != want {
		t.Fatalf("after Reset: %q, want %q", out, want)
	}
}

func TestChunkEncoder(t *testing.T) {
	var b []byte
	b = AppendChunk(b, []byte("hello"))
	b = AppendChunk(b, nil)
	b = AppendChunk(b, bytes.Repeat([]byte("x"), 300))
	b = AppendLastChunk(b, []Field{{[]byte("X-Sum"), []byte("1")}, {[]byte("Transfer-Encoding"), []byte("chunked")}})
	want := "5\r\nhello\r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\nX-Sum: 1\r\n\r\n"
	if string(b) != want {
		t.Fatalf("encoded %q\nwant %q", b, want)
	}
	if got := string(AppendChunkHeader(nil, 1<<62-1)); got != "3fffffffffffffff\r\n" {
		t.Fatalf("AppendChunkHeader(max) = %q", got)
	}
	got := decodePieces(b)
	if got.err != "" || !got.done || got.body != "hello"+strings.Repeat("x", 300) || got.trailers != "X-Sum: 1\n" {
		t.Fatalf("decoding the encoder's output: %+v", got)
	}
}

func TestChunkedReencodeZeroAllocs(t *testing.T) {
	in := []byte("5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
	var d ChunkedDecoder
	dst := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		d.Reset()
		if _, _, err := d.Reencode(dst[:0], in); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Reencode: %v allocs per run, want 0", n)
	}
}
