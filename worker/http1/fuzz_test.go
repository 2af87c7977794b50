package http1

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var genCorpus = flag.Bool("gencorpus", false, "rewrite testdata/fuzz seed corpora from the seed lists")

// relaxed limits re-parse serializer output, which may hold a few more
// lines (Host, Connection: close) than the input did.
var relaxed = &Limits{MaxHeadBytes: 1 << 20, MaxStartLine: 1 << 20, MaxFields: 1 << 12}

func requestSeeds() []string {
	s := []string{
		browserRequest,
		get("Connection: Upgrade", "Upgrade: websocket"),
		post("Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n",
		post("Content-Length: 5", "Expect: 100-continue") + "hello",
		head("GET http://a.example:8080 HTTP/1.1", "Host: b"),
		head("OPTIONS http://a.example HTTP/1.1", "Host: b"),
		head("CONNECT [::1]:443 HTTP/1.1", "Host: [::1]:443"),
		"GET / HTTP/1.0\r\nClose: x\r\n\r\n",
		head("GET / HTTP/1.0", "Connection: keep-alive, X-Hop", "X-Hop: a", "Host: a"),
	}
	for _, tc := range badRequests {
		if len(tc.in) < 512 {
			s = append(s, tc.in)
		}
	}
	for _, tc := range goodRequests {
		s = append(s, tc.in)
	}
	return s
}

func responseSeeds() []string {
	s := []string{typicalResponse}
	for _, tc := range badResponses {
		if len(tc.in) < 512 {
			s = append(s, tc.in)
		}
	}
	for _, tc := range goodResponses {
		s = append(s, tc.in)
	}
	return s
}

func chunkedSeeds() []string {
	var s []string
	for _, tc := range goodChunked {
		s = append(s, tc.in)
	}
	for _, tc := range badChunked {
		if len(tc.in) < 512 {
			s = append(s, tc.in)
		}
	}
	return s
}

var fuzzMethods = []string{"GET", "HEAD", "CONNECT", "POST"}

// TestWriteSeedCorpus rewrites testdata/fuzz from the seed lists when run
// with -gencorpus; otherwise it checks that every corpus directory exists.
func TestWriteSeedCorpus(t *testing.T) {
	type entry struct {
		target string
		lines  []string
	}
	var entries []entry
	for _, s := range requestSeeds() {
		entries = append(entries, entry{"FuzzParseRequest", []string{fmt.Sprintf("[]byte(%q)", s)}})
	}
	for i, s := range responseSeeds() {
		entries = append(entries, entry{"FuzzParseResponse", []string{fmt.Sprintf("[]byte(%q)", s), fmt.Sprintf("uint(%d)", i%len(fuzzMethods))}})
	}
	for i, s := range chunkedSeeds() {
		entries = append(entries, entry{"FuzzChunked", []string{fmt.Sprintf("[]byte(%q)", s), fmt.Sprintf("uint(%d)", i*7)}})
	}
	if !*genCorpus {
		for _, target := range []string{"FuzzParseRequest", "FuzzParseResponse", "FuzzChunked"} {
			files, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
			if err != nil || len(files) == 0 {
				t.Errorf("seed corpus of %s missing (go test -run TestWriteSeedCorpus -gencorpus): %v", target, err)
			}
		}
		return
	}
	for i, e := range entries {
		dir := filepath.Join("testdata", "fuzz", e.target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "go test fuzz v1\n"
		for _, l := range e.lines {
			text += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// endToEnd lists the fields a serializer forwards as received.
func endToEnd(fields []Field, ct *connTokens, request bool) []string {
	var out []string
	for _, f := range fields {
		if !IsHopByHop(f.Name) && !rewritten(f.Name, request) && !ct.named(f.Name) {
			out = append(out, string(f.Name)+": "+string(f.Value))
		}
	}
	return out
}

func checkError(t *testing.T, err error, statuses ...int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if !slices.Contains(statuses, e.Status) {
		t.Fatalf("error %v: status %d not among %v", err, e.Status, statuses)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		err := ParseRequest(&r, data, nil)
		n, ferr := FindRequestHead(data, nil)
		if err != nil {
			checkError(t, err, 400, 414, 417, 431, 501, 505)
			return
		}
		if ferr != nil || n != r.HeadLen {
			t.Fatalf("ParseRequest took %d bytes, FindRequestHead says %d, %v", r.HeadLen, n, ferr)
		}
		var extra []Field
		if len(r.Authority) == 0 {
			extra = []Field{{Name: []byte("Host"), Value: []byte("fuzz.example")}}
		}
		out := AppendRequest(nil, &r, extra...)
		var r2 Request
		if err := ParseRequest(&r2, out, relaxed); err != nil {
			t.Fatalf("serialized head %q does not parse: %v", out, err)
		}
		if r2.HeadLen != len(out) {
			t.Fatalf("HeadLen %d of %d", r2.HeadLen, len(out))
		}
		if string(r2.Method) != string(r.Method) ||
			string(r2.Target) != string(appendOriginTarget(nil, &r)) ||
			(len(r.Authority) > 0 && string(r2.Authority) != string(r.Authority)) ||
			r2.Body != r.Body || r2.ContentLength != r.ContentLength ||
			r2.KeepAlive != r.KeepAlive || r2.Expect100 != r.Expect100 ||
			r2.Upgrade != r.Upgrade || string(r2.UpgradeProto) != string(r.UpgradeProto) {
			t.Fatalf("round trip changed the request:\n in %q\nout %q\n%+v\n%+v", data[:r.HeadLen], out, r, r2)
		}
		if a, b := endToEnd(r.Fields, &r.conn, true), endToEnd(r2.Fields, &r2.conn, true); !slices.Equal(a, b) {
			t.Fatalf("round trip changed the fields:\n%q\n%q", a, b)
		}
		out2 := AppendRequest(nil, &r2)
		if len(r.Authority) > 0 && string(out2) != string(out) {
			t.Fatalf("serialization not stable:\n%q\n%q", out, out2)
		}
		var r3 Request
		if err := ParseRequest(&r3, out2, relaxed); err != nil {
			t.Fatalf("second serialization %q does not parse: %v", out2, err)
		}
		if out3 := AppendRequest(nil, &r3); string(out3) != string(out2) {
			t.Fatalf("serialization not stable:\n%q\n%q", out2, out3)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for i, s := range responseSeeds() {
		f.Add([]byte(s), uint(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, m uint) {
		method := []byte(fuzzMethods[m%uint(len(fuzzMethods))])
		var r Response
		err := ParseResponse(&r, data, method, nil)
		n, ferr := FindResponseHead(data, nil)
		if err != nil {
			checkError(t, err, 502)
			return
		}
		if ferr != nil || n != r.HeadLen {
			t.Fatalf("ParseResponse took %d bytes, FindResponseHead says %d, %v", r.HeadLen, n, ferr)
		}
		out := AppendResponse(nil, &r)
		if n := ResponseLen(&r); n != len(out) {
			t.Fatalf("ResponseLen %d, AppendResponse wrote %d: %q", n, len(out), out)
		}
		var r2 Response
		if err := ParseResponse(&r2, out, method, relaxed); err != nil {
			t.Fatalf("serialized head %q does not parse: %v", out, err)
		}
		if r2.HeadLen != len(out) || r2.Status != r.Status || string(r2.Reason) != string(r.Reason) ||
			r2.Body != r.Body || r2.ContentLength != r.ContentLength || r2.KeepAlive != r.KeepAlive ||
			r2.Upgrade != r.Upgrade || string(r2.UpgradeProto) != string(r.UpgradeProto) {
			t.Fatalf("round trip changed the response:\n in %q\nout %q\n%+v\n%+v", data[:r.HeadLen], out, r, r2)
		}
		if a, b := endToEnd(r.Fields, &r.conn, false), endToEnd(r2.Fields, &r2.conn, false); !slices.Equal(a, b) {
			t.Fatalf("round trip changed the fields:\n%q\n%q", a, b)
		}
		if out2 := AppendResponse(nil, &r2); string(out2) != string(out) {
			t.Fatalf("serialization not stable:\n%q\n%q", out, out2)
		}
	})
}

func FuzzChunked(f *testing.F) {
	for i, s := range chunkedSeeds() {
		f.Add([]byte(s), uint(i*7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		k := int(split % uint(len(data)+1))
		whole := decodePieces(data)
		if got := decodePieces(data[:k:k], data[k:]); got != whole {
			t.Fatalf("split at %d changes Feed:\n%+v\n%+v", k, whole, got)
		}
		if got := decodeInto(3, data[:k:k], data[k:]); got != whole {
			t.Fatalf("split at %d changes Decode:\n%+v\n%+v", k, whole, got)
		}
		re := reencodePieces(data)
		if got := reencodePieces(data[:k:k], data[k:]); got != re {
			t.Fatalf("split at %d changes Reencode:\n%+v\n%+v", k, re, got)
		}
		checkReencodeGrowth(t, data[:k:k], data[k:])
		checkReencodeGrowth(t, bytewise(data)...)
		if re.err != whole.err || re.consumed != whole.consumed || re.done != whole.done {
			t.Fatalf("Reencode and Feed disagree:\n%+v\n%+v", re, whole)
		}
		if whole.err != "" {
			var d ChunkedDecoder
			_, _, err := d.Reencode(nil, data)
			checkError(t, err, 400)
			return
		}
		if !whole.done {
			return
		}
		back := decodePieces([]byte(re.canonical))
		want := chunkedResult{body: whole.body, trailers: trailerString(keptTrailers(whole.trailers)), consumed: len(re.canonical), done: true}
		if back != want {
			t.Fatalf("re-encoded body decodes differently:\n%+v\n%+v", back, want)
		}
		if again := reencodePieces([]byte(re.canonical)); again.canonical != re.canonical {
			t.Fatalf("canonical form not a fixed point:\n%q\n%q", re.canonical, again.canonical)
		}
	})
}

// checkReencodeGrowth checks the output bound documented on Reencode.
func checkReencodeGrowth(t *testing.T, pieces ...[]byte) {
	t.Helper()
	var d ChunkedDecoder
	var out []byte
	for _, p := range pieces {
		before := len(out)
		var n int
		var err error
		out, n, err = d.Reencode(out, p)
		limit := n + ReencodeSlack
		if d.Done() {
			limit += DefaultMaxTrailerBytes
		}
		if len(out)-before > limit {
			t.Fatalf("Reencode appended %d bytes for %d consumed", len(out)-before, n)
		}
		if err != nil || d.Done() {
			return
		}
	}
}
