package health

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// origin serves one canned answer per connection and sends the request
// head it read to heads.
func origin(t *testing.T, answer string) (addr string, heads chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	heads = make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				var head strings.Builder
				for {
					l, err := r.ReadString('\n')
					head.WriteString(l)
					if err != nil || l == "\r\n" {
						break
					}
				}
				heads <- head.String()
				if answer == "hang" {
					r.ReadByte() // until the probe gives up
					return
				}
				c.Write([]byte(answer))
			}()
		}
	}()
	return ln.Addr().String(), heads
}

func TestProbe(t *testing.T) {
	long := "HTTP/1.1 200 " + strings.Repeat("x", maxResponseHead) + "\r\n\r\n"
	for _, tc := range []struct {
		name     string
		answer   string
		expected int
		err      string // "" = success; else a substring of the error
	}{
		{"200 any 2xx", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, ""},
		{"204 any 2xx", "HTTP/1.1 204 No Content\r\n\r\n", 0, ""},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\n\r\n", 0, ""},
		{"no reason", "HTTP/1.1 200\r\n\r\n", 0, ""},
		{"301 not 2xx", "HTTP/1.1 301 Moved\r\n\r\n", 0, "status: got 301, want any 2xx"},
		{"503 not 2xx", "HTTP/1.1 503 Busy\r\n\r\n", 0, "status: got 503, want any 2xx"},
		{"exact 503", "HTTP/1.1 503 Busy\r\n\r\n", 503, ""},
		{"exact 200 wanted, 204", "HTTP/1.1 204 No Content\r\n\r\n", 200, "got 204, want 200"},
		{"garbage", "SSH-2.0-OpenSSH\r\n", 0, "not an HTTP/1.x status line"},
		{"closed before answer", "", 0, "read: connection closed before a status line"},
		{"status line too long", long, 0, "no status line in the first 4096 bytes"},
		{"no answer", "hang", 0, "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, heads := origin(t, tc.answer)
			var d net.Dialer
			cfg := Config{URI: "/health?x=1", Timeout: 300 * time.Millisecond, Expected: tc.expected}
			err := Probe(context.Background(), d.DialContext, cfg, addr)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("probe failed: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("probe error %v, want one containing %q", err, tc.err)
			case err != nil && !strings.Contains(err.Error(), addr):
				t.Fatalf("probe error %q does not name the backend %s", err, addr)
			}
			// The request is exactly the probe's own: no header from
			// anywhere else.
			want := "GET /health?x=1 HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: sozu-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
			if got := <-heads; got != want {
				t.Fatalf("request %q, want %q", got, want)
			}
		})
	}
}

func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := ln.Addr().String()
	var d net.Dialer
	cfg := Config{TCP: true, Timeout: time.Second}
	if err := Probe(context.Background(), d.DialContext, cfg, up); err != nil {
		t.Fatalf("connect probe of a listening backend: %v", err)
	}
	ln.Close()
	if err := Probe(context.Background(), d.DialContext, cfg, up); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("connect probe of a closed port: %v, want a connect error", err)
	}
}

func TestParseStatusLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		code int
		err  string
	}{
		{"HTTP/1.1 200 OK", 200, ""},
		{"HTTP/1.0 404 Not Found", 404, ""},
		{"HTTP/1.1 599", 599, ""},
		{"HTTP/1.1 600 X", 0, "not three digits 100-599"},
		{"HTTP/1.1 099 X", 0, "not three digits 100-599"},
		{"HTTP/1.1 2000 OK", 0, "followed by '0'"},
		{"HTTP/1.1  200 OK", 0, "not three digits"},
		{"HTTP/2 200 OK", 0, "not an HTTP/1.x status line"},
		{"http/1.1 200 OK", 0, "not an HTTP/1.x status line"},
		{"HTTP/1.1 20", 0, "not an HTTP/1.x status line"},
		{"", 0, "not an HTTP/1.x status line"},
		{"4111111111111111 is no status line", 0, `"411111******1111 is no status line"`}, // a PAN a backend sent is masked
	} {
		code, err := ParseStatusLine([]byte(tc.line))
		if tc.err == "" && (err != nil || code != tc.code) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseStatusLine(%q) = %d, %v; want %d, %q", tc.line, code, err, tc.code, tc.err)
		}
	}
}

// FuzzParseStatusLine: a code is returned only for a line that starts with
// HTTP/1.x and that code, and it is within 100-599.
func FuzzParseStatusLine(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 200 OK", "HTTP/1.0 503", "HTTP/1.1 2000", "HTTP/2 200", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		code, err := ParseStatusLine(line)
		if err != nil {
			return
		}
		if code < 100 || code > 599 {
			t.Fatalf("code %d out of range for %q", code, line)
		}
		if want := string(line[:9]) + itoa3(code); !strings.HasPrefix(string(line), want) {
			t.Fatalf("code %d is not what %q says", code, line)
		}
	})
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}
