package redact

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// refFindKeyBlock is findKeyBlock as written over an upper-cased copy of
// s (the definition indexUpper keeps): the reference of TestFindKeyBlockInPlace.
func refFindKeyBlock(s string) (int, int) {
	up := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if len(up) != len(s) { // invalid UTF-8 became U+FFFD: fold bytes instead
		b := []byte(s)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		up = string(b)
	}
	for pos := 0; ; {
		b := strings.Index(up[pos:], beginMarker)
		if b < 0 {
			return -1, -1
		}
		b += pos
		labelStart := b + len(beginMarker)
		e := strings.Index(up[labelStart:], dashes)
		if e < 0 {
			return -1, -1
		}
		label := up[labelStart : labelStart+e]
		if strings.ContainsAny(label, "\r\n") || !strings.Contains(label, keyLabel) {
			pos = labelStart
			continue
		}
		end := len(up)
		for p := labelStart + e + len(dashes); ; {
			x := strings.Index(up[p:], endMarker)
			if x < 0 {
				break
			}
			x += p
			ls := x + len(endMarker)
			d := strings.Index(up[ls:], dashes)
			if d < 0 {
				break
			}
			if l := up[ls : ls+d]; !strings.ContainsAny(l, "\r\n") && strings.Contains(l, keyLabel) {
				end = ls + d + len(dashes)
				break
			}
			p = ls
		}
		return b, end
	}
}

// TestFindKeyBlockInPlace: findKeyBlock, which folds case in place, finds
// the blocks the upper-cased copy finds, on strings made of the pieces
// that matter (markers in either case, dashes, labels, line ends, text);
// and it allocates nothing, however long the string (it is run on every
// string of every answer and audited request: a copy doubled the memory a
// 2 MB certificate chain took).
func TestFindKeyBlockInPlace(t *testing.T) {
	pieces := []string{"-----", "-", "BEGIN ", "begin ", "BeGiN ", "END ", "end ", "PRIVATE KEY", "private key", "Private Key",
		"PRIVATE", " KEY", "RSA ", "CERTIFICATE", "\n", "\r", "x", "é", "\xff", " "}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		var b strings.Builder
		for k := r.IntN(16); k >= 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		gi, gj := findKeyBlock(s)
		wi, wj := refFindKeyBlock(s)
		if gi != wi || gj != wj {
			t.Fatalf("findKeyBlock(%q) = %d, %d; want %d, %d", s, gi, gj, wi, wj)
		}
	}
	long := strings.Repeat("-----begin certificate-----\nabcdefgh\n-----end certificate-----\n", 1<<14) // 1 MiB, lower case
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	found := HasPrivateKey(long)
	runtime.ReadMemStats(&after)
	if found || after.TotalAlloc-before.TotalAlloc > 1024 {
		t.Errorf("HasPrivateKey on %d bytes: %v, allocated %d bytes", len(long), found, after.TotalAlloc-before.TotalAlloc)
	}
}

// TestWalkAllocatesPerListNotPerMessage: looking for something to redact
// in a request of 10 000 headers with nothing to redact allocates less
// than a fraction of the headers' own memory (72 bytes each): it is done
// for every audited request and every answer, and a list of each
// message's fields, built to visit them, took 345 bytes a header.
func TestWalkAllocatesPerListNotPerMessage(t *testing.T) {
	hs := make([]*command.Header, 10000)
	for i := range hs {
		hs[i] = &command.Header{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("X-Forwarded-Proto"), Val: proto.String("")}
	}
	req := &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
		ClusterId: proto.String("c"), Hostname: proto.String("example.com"), Headers: hs}}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := Message(req)
	runtime.ReadMemStats(&after)
	if got != req {
		t.Fatal("a request with nothing to redact was copied")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32*uint64(len(hs)) {
		t.Errorf("redact.Message on %d headers allocated %d bytes", len(hs), n)
	}
}
