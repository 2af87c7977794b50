package http1

import (
	"errors"
	"strings"
	"testing"
)

// scanGrowing feeds the scanner a buffer growing one byte at a time, as
// reads would, and returns the first non-zero result or error.
func scanGrowing(in string, response bool, lim *Limits) (int, error) {
	s := HeadScanner{Limits: lim, Response: response}
	for i := 1; i <= len(in); i++ {
		n, err := s.Scan([]byte(in[:i]))
		if n != 0 || err != nil {
			return n, err
		}
	}
	return 0, nil
}

func TestHeadScanner(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		response bool
		n        int // head length, 0: need more
		status   int // error status, 0: none
	}{
		{"request", browserRequest + "body", false, len(browserRequest), 0},
		{"response", typicalResponse + "body", true, len(typicalResponse), 0},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false, 31, 0},
		{"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", false, 0, 0},
		{"incomplete CR", "GET / HTTP/1.1\r\nHost: a\r\n\r", false, 0, 0},
		{"bare LF in request-line", "GET / HTTP/1.1\nHost: a\r\n\r\n", false, 0, 400},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", false, 0, 400},
		{"bare LF response", "HTTP/1.1 200 OK\n\r\n", true, 0, 502},
		{"leading empty line in response", "\r\nHTTP/1.1 200 OK\r\n\r\n", true, 0, 502},
		{"request-line too long", "GET /" + strings.Repeat("a", DefaultMaxStartLine), false, 0, 414},
		// A request-line longer than the whole head may be, come whole: it is
		// still the line that is too long (414), not the head (431).
		{"request-line longer than a head", "GET /" + strings.Repeat("a", DefaultMaxHeadBytes) + " HTTP/1.1\r\nHost: a\r\n\r\n", false, 0, 414},
		{"status-line longer than a head", "HTTP/1.1 200 " + strings.Repeat("a", DefaultMaxHeadBytes) + "\r\n\r\n", true, 0, 502},
		{"head too large", "GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", DefaultMaxHeadBytes/6+1), false, 0, 431},
		{"status-line too long", "HTTP/1.1 200 " + strings.Repeat("a", DefaultMaxStartLine), true, 0, 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, n int, err error) {
				t.Helper()
				var e *Error
				switch {
				case tc.status == 0 && (err != nil || n != tc.n):
					t.Fatalf("%s: %d, %v; want %d", how, n, err, tc.n)
				case tc.status != 0 && (!errors.As(err, &e) || e.Status != tc.status):
					t.Fatalf("%s: %d, %v; want status %d", how, n, err, tc.status)
				}
			}
			s := HeadScanner{Response: tc.response}
			n, err := s.Scan([]byte(tc.in))
			check("at once", n, err)
			n, err = scanGrowing(tc.in, tc.response, nil)
			check("byte by byte", n, err)
		})
	}
}

func TestHeadScannerReset(t *testing.T) {
	var s HeadScanner
	two := []byte(get() + get())
	n, err := s.Scan(two)
	if err != nil || n != len(get()) {
		t.Fatalf("first head: %d, %v", n, err)
	}
	n, err = s.Scan(two[n:])
	if err != nil || n != len(get()) {
		t.Fatalf("second head after the automatic reset: %d, %v", n, err)
	}
}
