package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/router"
)

// TestDateField: a response forwarded without a Date field gets one, the
// time it was received (RFC 9110 §6.6.1: a recipient with a clock MUST
// append it to a response it forwards without one); a backend's own Date
// is forwarded as it is, never doubled. The proxy's own answers, for which
// it is the origin server, carry one too (MUST for 2xx, 3xx and 4xx).
func TestDateField(t *testing.T) {
	const backendDate = "Tue, 15 Nov 1994 08:12:31 GMT"
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(head, "GET /dated ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nDate: "+backendDate+"\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	rules := []router.Rule{{Hostname: "a", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c"}}}
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}}, nil)
	for _, tc := range []struct{ name, req, want string }{
		{"forwarded without Date", "GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", ""},
		{"forwarded with the backend's Date", "GET /dated HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", backendDate},
		{"the proxy's own 404", "GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n", ""},
		{"the proxy's own 400", "GET / HTTP/1.1\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(exchangeRaw(t, f.addr, tc.req))), nil)
			if err != nil {
				t.Fatal(err)
			}
			dates := resp.Header.Values("Date")
			if len(dates) != 1 {
				t.Fatalf("Date fields %q, want one", dates)
			}
			if tc.want != "" {
				if dates[0] != tc.want {
					t.Fatalf("Date %q, want the backend's %q", dates[0], tc.want)
				}
				return
			}
			d, err := http.ParseTime(dates[0])
			if err != nil || dates[0] != d.UTC().Format(http.TimeFormat) {
				t.Fatalf("Date %q is no IMF-fixdate: %v", dates[0], err)
			}
			if d.Before(before) || d.After(time.Now()) {
				t.Fatalf("Date %v, not the time of the response (%v..%v)", d, before, time.Now())
			}
		})
	}
}
