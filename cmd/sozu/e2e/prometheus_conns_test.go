package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// openFDs counts the descriptors process pid holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting the descriptors of pid %d: %v", pid, err)
	}
	return len(ents)
}

// A local user opening many idle connections to the Prometheus address
// (loopback: every local user reaches it) must not make the supervisor
// hold a descriptor for each: past a bound they are closed at once, so
// the supervisor keeps descriptors for its command socket, audit files
// and workers.
func TestPrometheusConnectionsBounded(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) + fmt.Sprintf("\n[metrics]\nprometheus_address = %q\n", prom)
	p := startProxy(t, dir, sock, cfg, front, prom)
	pid := p.Cmd.Process.Pid
	base := openFDs(t, pid)

	const n, slack = 300, 16 // the bound is 32 (maxPrometheusConns)
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", prom)
		if err != nil {
			t.Fatalf("connection %d to %s: %v", len(conns), prom, err)
		}
		conns = append(conns, c)
	}
	// The connections past the bound are closed by the supervisor; the
	// descriptor count never grows past the bound meanwhile.
	closed := make([]bool, n)
	peak := 0
	sozutest.WaitFor(t, 30*time.Second, "the supervisor closes the connections past its bound", func() bool {
		peak = max(peak, openFDs(t, pid)-base)
		done := 0
		for i, c := range conns {
			if !closed[i] {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil && !strings.Contains(err.Error(), "timeout") {
					closed[i] = true
				}
			}
			if closed[i] {
				done++
			}
		}
		return done >= n-32
	})
	if peak > 32+slack {
		t.Errorf("the supervisor held up to %d more descriptors under %d idle Prometheus connections, want at most %d", peak, n, 32+slack)
	}
	for _, c := range conns {
		c.Close()
	}
	// Scrapes are served again once the idle connections are gone.
	sozutest.WaitFor(t, 20*time.Second, "a scrape answers", func() bool {
		resp, err := http.Get("http://" + prom + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !p.Alive() {
		t.Fatal("the supervisor died")
	}
}
