package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNoResponseQueuePoisoning: bytes a faulty backend sends after a
// complete response (a HEAD answered with a body in a write of its own, a
// body longer than its Content-Length past a spliced copy) never reach the
// next client of that pooled connection as its response (RFC 9112 §9.3.2:
// responses answer requests in order; PortSwigger's response queue
// poisoning): every reuse is checked first.
func TestNoResponseQueuePoisoning(t *testing.T) {
	const stray = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"
	big := strings.Repeat("b", 100000)
	written := make(chan struct{}, 4)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			method, rest, _ := strings.Cut(head, " ")
			path, _, _ := strings.Cut(rest, " ")
			switch path {
			case "/head-with-body":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
				io.WriteString(c, stray) // a write of its own: after the response was read
			case "/longer-than-announced":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+big+stray)
			default:
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(method+path), method+path)
				continue
			}
			written <- struct{}{}
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	for _, tc := range []struct{ method, path string }{
		{"HEAD", "/head-with-body"},
		{"GET", "/longer-than-announced"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// One client, its own connection: the faulty exchange.
			req, _ := http.NewRequest(tc.method, "http://"+f.addr+tc.path, nil)
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			select {
			case <-written:
			case <-time.After(5 * time.Second):
				t.Fatal("the backend never answered")
			}
			// The stray bytes are in the proxy's socket now (loopback):
			// the next clients must each get their own response.
			for i := range 3 {
				path := fmt.Sprintf("/client-%d", i)
				resp, err := client().Get("http://" + f.addr + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "GET"+path {
					t.Fatalf("client %d got %q, want %q: another exchange's bytes", i, body, "GET"+path)
				}
			}
		})
	}
}
