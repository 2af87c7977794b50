package proxy

import (
	"bufio"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/sozu-go/sozu/worker/http1"
)

// TestMaxForwards: the proxy is an intermediary for RFC 9110 §7.6.2. A
// TRACE or OPTIONS request with Max-Forwards: 0 is answered by the proxy
// as the final recipient and never reaches a backend (OPTIONS: 200; TRACE:
// 501, the proxy reflects no request, whose cookies and credentials a
// reflection would expose); a larger value is forwarded decremented by
// one; a malformed or repeated field is refused. Other methods' fields are
// forwarded as they are (the RFC lets a recipient ignore them).
func TestMaxForwards(t *testing.T) {
	var mu sync.Mutex
	var heads []string
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			mu.Lock()
			heads = append(heads, head)
			mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nbackend")
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	for _, tc := range []struct {
		name, method, fields string
		status               string // what the client gets
		forwarded            string // the Max-Forwards line the backend gets; "" for none, "-" when nothing reaches it
	}{
		{"OPTIONS 0 answered by the proxy", "OPTIONS", "Max-Forwards: 0\r\n", "HTTP/1.1 200 OK", "-"},
		{"TRACE 0 answered by the proxy", "TRACE", "Max-Forwards: 0\r\n", "HTTP/1.1 501 Not Implemented", "-"},
		{"OPTIONS 0 with leading zeros", "OPTIONS", "max-forwards: 000\r\n", "HTTP/1.1 200 OK", "-"},
		{"OPTIONS 10 forwarded as 9", "OPTIONS", "Max-Forwards: 10\r\n", "HTTP/1.1 200 OK", "Max-Forwards: 9"},
		{"TRACE 1 forwarded as 0", "TRACE", "Max-Forwards: 1\r\n", "HTTP/1.1 200 OK", "Max-Forwards: 0"},
		{"TRACE 100 forwarded as 99", "TRACE", "Max-Forwards: 100\r\n", "HTTP/1.1 200 OK", "Max-Forwards: 99"},
		{"huge value forwarded decremented", "OPTIONS", "Max-Forwards: 100000000000000000000000\r\n", "HTTP/1.1 200 OK", "Max-Forwards: 99999999999999999999999"},
		{"OPTIONS without the field", "OPTIONS", "", "HTTP/1.1 200 OK", ""},
		{"GET 0 forwarded as it is", "GET", "Max-Forwards: 0\r\n", "HTTP/1.1 200 OK", "Max-Forwards: 0"},
		{"malformed value", "OPTIONS", "Max-Forwards: 1x\r\n", "HTTP/1.1 400 Bad Request", "-"},
		{"signed value", "TRACE", "Max-Forwards: +1\r\n", "HTTP/1.1 400 Bad Request", "-"},
		{"empty value", "TRACE", "Max-Forwards: \r\n", "HTTP/1.1 400 Bad Request", "-"},
		{"two fields", "OPTIONS", "Max-Forwards: 5\r\nMax-Forwards: 0\r\n", "HTTP/1.1 400 Bad Request", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			heads = nil
			mu.Unlock()
			got := exchangeRaw(t, f.addr, tc.method+" /x HTTP/1.1\r\nHost: a\r\n"+tc.fields+"Connection: close\r\n\r\n")
			if statusOf(got) != tc.status {
				t.Fatalf("client got %q, want %s", got, tc.status)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.forwarded == "-" {
				if len(heads) != 0 {
					t.Fatalf("the backend got %q", heads)
				}
				return
			}
			if len(heads) != 1 {
				t.Fatalf("the backend got %d requests", len(heads))
			}
			var lines []string
			for _, l := range strings.Split(heads[0], "\r\n") {
				if strings.HasPrefix(strings.ToLower(l), "max-forwards:") {
					lines = append(lines, l)
				}
			}
			want := []string{tc.forwarded}
			if tc.forwarded == "" {
				want = nil
			}
			if strings.Join(lines, "|") != strings.Join(want, "|") {
				t.Fatalf("the backend got Max-Forwards %q, want %q", lines, want)
			}
		})
	}
}

// FuzzMaxForwards: for any value, maxForwards refuses what is not
// 1*DIGIT, finds 0 (any number of zeros) final, and otherwise writes
// exactly the value minus one, without leading zeros, whatever its length.
func FuzzMaxForwards(f *testing.F) {
	for _, s := range []string{"0", "1", "10", "100", "0010", "99999999999999999999999999", "", "+1", "1x", " 1", "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req := &http1.Request{Method: []byte("TRACE"), Fields: []http1.Field{
			{Name: []byte("Host"), Value: []byte("a")},
			{Name: []byte("Max-Forwards"), Value: []byte(v)},
		}}
		n, ok := new(big.Int).SetString(v, 10)
		valid := ok && v != "" && strings.Trim(v, "0123456789") == ""
		got := maxForwards(req)
		switch {
		case !valid:
			if got != mfBad {
				t.Fatalf("%q: %d, want mfBad", v, got)
			}
		case n.Sign() == 0:
			if got != mfFinal {
				t.Fatalf("%q: %d, want mfFinal", v, got)
			}
		default:
			want := n.Sub(n, big.NewInt(1)).String()
			if got != mfForward || string(req.Fields[1].Value) != want {
				t.Fatalf("%q: %d %q, want %q", v, got, req.Fields[1].Value, want)
			}
		}
	})
}
