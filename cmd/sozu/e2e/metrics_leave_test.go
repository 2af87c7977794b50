package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pm "github.com/sozu-go/sozu/proto/metrics"
)

// An HTTP/1.1 client that closes (FIN) or resets its connection while its
// request waits for a backend that takes 10 s is noticed within about a
// second, not at back_timeout: the backend connection is closed then, and
// the request is counted and logged as an HTTP/2 stream the client
// cancelled is (TestMetricsH2ClientCancelIsNoError): no status, no 5xx,
// and a record whose reason says the client left. A client that stays
// still gets its 504 at back_timeout, and one that pipelines a second
// request during the wait gets both answers.
func TestMetricsHTTPClientLeavingIsNoError(t *testing.T) {
	const backTimeout = 4 * time.Second
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	got := make(chan string, 16)
	closed := make(chan time.Time, 16)
	origin := startRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			for h := ""; h != "\r\n"; {
				if h, err = br.ReadString('\n'); err != nil {
					return
				}
			}
			got <- strings.TrimSpace(line)
			body := "fast"
			if !strings.HasPrefix(line, "GET /fast ") {
				// /slow takes 10 s, /late 1.5 s, unless the proxy
				// gives the request up before.
				hold := 10 * time.Second
				if strings.HasPrefix(line, "GET /late ") {
					hold, body = 1500*time.Millisecond, "late"
				}
				c.SetReadDeadline(time.Now().Add(hold))
				if _, err := br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
					if err != nil {
						closed <- time.Now()
					}
					return
				}
				c.SetReadDeadline(time.Time{})
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
				return
			}
		}
	})
	addr := freeAddr(t)
	startProxy(t, dir, sock, fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true
access_logs_target = "file://%[2]s/access.log"
access_logs_format = "json"

[[listeners]]
protocol = "http"
address = %[3]q
back_timeout = %[4]d

[clusters.app]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "a.test" } ]
backends = [ { backend_id = "app-0", address = %[5]q } ]
`, sock, dir, addr, int(backTimeout/time.Second), origin.addr), addr)
	originHas := func(what string) {
		t.Helper()
		select {
		case line := <-got:
			if !strings.Contains(line, what) {
				t.Fatalf("the origin got %q, want %s", line, what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the origin never got %s", what)
		}
	}
	dial := func() *net.TCPConn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(15 * time.Second))
		return c.(*net.TCPConn)
	}

	for _, reset := range []bool{false, true} {
		c := dial()
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
		originHas("/slow")
		if reset {
			c.SetLinger(0) // the close sends a reset
		}
		left := time.Now()
		c.Close()
		select {
		case at := <-closed:
			t.Logf("reset %v: the backend connection closed %v after the client left (back_timeout %v)", reset, at.Sub(left).Round(time.Millisecond), backTimeout)
		case <-time.After(backTimeout / 2):
			t.Fatalf("reset %v: the backend connection still open %v after the client left (back_timeout %v)", reset, backTimeout/2, backTimeout)
		}
	}

	// A pipelined request during the wait is no hang-up, and is answered.
	c := dial()
	io.WriteString(c, "GET /late HTTP/1.1\r\nHost: a.test\r\n\r\n")
	originHas("/late")
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"late", "fast"} {
		resp, err := readResponse(br)
		if err != nil || !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.HasSuffix(resp, want) {
			t.Fatalf("response %q (%v), want a 200 %q", resp, err, want)
		}
	}
	originHas("/fast")

	// A client that stays gets its 504 at back_timeout (re-armed lazily:
	// between 7/8 of it and all of it).
	c = dial()
	start := time.Now()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
	originHas("/slow")
	resp, _ := io.ReadAll(c)
	if d := time.Since(start); !strings.HasPrefix(string(resp), "HTTP/1.1 504 ") || d < backTimeout*7/8 || d > backTimeout+time.Second {
		t.Fatalf("a client that stays: %q after %v, want a 504 at back_timeout (%v)", resp, d, backTimeout)
	}

	// A session records a request's metrics before its access record:
	// once the 5 records are in, so are the metrics.
	recs := accessRecords(t, filepath.Join(dir, "access.log"), 5)
	p := queryMetrics(t, sock, nil).GetProxying()
	for name, want := range map[string]int64{pm.HTTPRequests: 3, pm.Status2xx: 2, pm.Status5xx: 1, pm.AnswerError(504): 1, pm.AnswerError(502): 0} {
		if got := p[name].GetCount(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	var left int
	for _, r := range recs {
		path, _ := ecs(r, "url.path").(string)
		status, reason := ecs(r, "http.response.status_code"), ecs(r, "event.reason")
		switch {
		case status == nil:
			left++
			if s, _ := reason.(string); path != "/slow" || !strings.Contains(s, "client") {
				t.Errorf("record of %s without a status: reason %v, want the client's leaving", path, reason)
			}
		case path == "/slow" && status != float64(504), path != "/slow" && status != float64(200), reason != nil:
			t.Errorf("record of %s: status %v, reason %v", path, status, reason)
		}
	}
	if left != 2 || len(recs) != 5 {
		t.Errorf("%d records, %d without a status; want 5, 2: %v", len(recs), left, recs)
	}
}

// readResponse reads one response with a Content-Length body from br.
func readResponse(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			fmt.Sscan(v, &n)
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	_, err := io.ReadFull(br, body)
	sb.Write(body)
	return sb.String(), err
}
