package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEarlyResponseNotCutByTheClose: a backend that answers a request
// before reading its body (an upload refused, or served, at once) gets
// its response to the client whole, though the connection then closes
// with the rest of the body unread: the proxy half-closes and drains
// what the client still sends until the client has the response (RFC
// 9112 §9.6), instead of a close whose reset drops what the kernel had
// not sent yet. Over TLS as over TCP.
func TestEarlyResponseNotCutByTheClose(t *testing.T) {
	const size = 4 << 20
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHeadFrom(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size)
		c.Write([]byte(strings.Repeat("r", size)))
		c.(countingConn).Conn.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br) // no reset from this side
	})
	conf := testTLSConfig(t, "a.test")
	for _, useTLS := range []bool{false, true} {
		f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
			if useTLS {
				l.TLS = conf
			}
		})
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			for i := range 3 {
				raw, err := net.Dial("tcp", f.addr)
				if err != nil {
					t.Fatal(err)
				}
				var c net.Conn = raw
				if useTLS {
					c = tls.Client(raw, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				done := make(chan struct{})
				go func() { // the upload goes on until the connection ends
					defer close(done)
					fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000000000\r\n\r\n")
					chunk := []byte(strings.Repeat("x", 64<<10))
					for {
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("attempt %d: %v", i, err)
				}
				time.Sleep(100 * time.Millisecond) // the response is still in the proxy's kernel
				n, err := io.Copy(io.Discard, resp.Body)
				c.Close()
				<-done
				if n != size {
					t.Fatalf("attempt %d: the client got %d of %d response bytes (%v)", i, n, size, err)
				}
			}
		})
	}
}
