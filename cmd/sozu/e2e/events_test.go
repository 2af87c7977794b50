package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// eventsCLI is a running `sozu events`, its stdout read line by line.
type eventsCLI struct {
	cmd   *exec.Cmd
	lines chan string // closed at EOF
	done  chan error  // the exit of cmd
}

func startEventsCLI(t *testing.T, p *sozutest.Proxy, args ...string) *eventsCLI {
	t.Helper()
	cmd := exec.Command(sozutest.Bin, append([]string{"-c", p.CfgPath, "events"}, args...)...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = &sozutest.SyncBuffer{}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &eventsCLI{cmd: cmd, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			e.lines <- sc.Text()
		}
		close(e.lines)
		e.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return e
}

// next returns the first line (after those already read) that contains
// want, failing the test when none comes within d.
func (e *eventsCLI) next(t *testing.T, d time.Duration, want string) string {
	t.Helper()
	timeout := time.After(d)
	var seen []string
	for {
		select {
		case l, ok := <-e.lines:
			if !ok {
				t.Fatalf("sozu events ended before a line with %q; it printed:\n%s\nstderr: %s", want, strings.Join(seen, "\n"), e.cmd.Stderr)
			}
			if strings.Contains(l, want) {
				return l
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no line with %q within %v; sozu events printed:\n%s", want, d, strings.Join(seen, "\n"))
		}
	}
}

// exit waits for the CLI to exit and returns its code.
func (e *eventsCLI) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	go func() {
		for range e.lines { // drain what is left
		}
	}()
	select {
	case err := <-e.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("sozu events did not exit within %v", d)
		return -1
	}
}

// TestEventsCLI: `sozu events` prints the event of a removed backend
// within a second, as text and as JSON lines that parse; SIGINT ends it
// with exit 0, and so does a stop of the proxy (with a note), while
// SIGTERM on a second follower also ends it with exit 0.
func TestEventsCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startHTTPOrigin(t, nil)
	b := startHTTPOrigin(t, nil)
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %q

[clusters.shop]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "*" } ]
backends = [ { address = %[3]q, backend_id = "shop-a" }, { address = %[4]q, backend_id = "shop-b" } ]
`, sock, front, a.addr, b.addr)
	p := startProxy(t, dir, sock, cfg, front)

	text := startEventsCLI(t, p)
	text.next(t, 10*time.Second, "EVENTS_SUBSCRIBED")
	js := startEventsCLI(t, p, "--json")
	js.next(t, 10*time.Second, "EVENTS_SUBSCRIBED")
	term := startEventsCLI(t, p)
	term.next(t, 10*time.Second, "EVENTS_SUBSCRIBED")

	start := time.Now()
	p.MustCLI("backend", "remove", "--id", "shop", "--backend-id", "shop-b", "--address", b.addr)
	line := text.next(t, time.Second, "REMOVED_BACKEND_HAS_NO_CONNECTIONS")
	t.Logf("after %v: %s", time.Since(start), line)
	for _, want := range []string{"cluster=shop", "backend=shop-b", "address=" + b.addr, "worker "} {
		if !strings.Contains(line, want) {
			t.Errorf("event line lacks %q: %s", want, line)
		}
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", strings.Fields(line)[0]); err != nil {
		t.Errorf("event line does not start with its time: %s", line)
	}
	jl := js.next(t, time.Second, "REMOVED_BACKEND_HAS_NO_CONNECTIONS")
	var rec map[string]string
	if err := json.Unmarshal([]byte(jl), &rec); err != nil {
		t.Fatalf("--json line does not parse: %v\n%s", err, jl)
	}
	if rec["kind"] != "REMOVED_BACKEND_HAS_NO_CONNECTIONS" || rec["cluster_id"] != "shop" || rec["backend_id"] != "shop-b" || rec["address"] != b.addr {
		t.Errorf("--json event: %v", rec)
	}
	if _, err := time.Parse(time.RFC3339, rec["time"]); err != nil {
		t.Errorf("--json time %q: %v", rec["time"], err)
	}

	// Every line of the JSON stream parses.
	p.MustCLI("cluster", "remove", "--id", "shop")
	// Mutation events name what changed.
	if l := js.next(t, 5*time.Second, "CLUSTER_REMOVED"); !strings.Contains(l, `"cluster_id":"shop"`) {
		t.Errorf("CLUSTER_REMOVED does not name the cluster: %s", l)
	}
	js.cmd.Process.Signal(syscall.SIGINT)
	if code := js.exit(t, 10*time.Second); code != 0 {
		t.Errorf("sozu events --json after SIGINT: exit %d, want 0\n%s", code, js.cmd.Stderr)
	}
	term.cmd.Process.Signal(syscall.SIGTERM)
	if code := term.exit(t, 10*time.Second); code != 0 {
		t.Errorf("sozu events after SIGTERM: exit %d, want 0\n%s", code, term.cmd.Stderr)
	}

	// The proxy stops as asked: the follower says so and exits 0.
	p.MustCLI("shutdown", "--hard")
	text.next(t, 10*time.Second, "SOZU_STOP_REQUESTED")
	if code := text.exit(t, 20*time.Second); code != 0 || !strings.Contains(fmt.Sprint(text.cmd.Stderr), "the proxy stopped") {
		t.Errorf("sozu events after shutdown: exit %d, want 0 with a note\n%s", code, text.cmd.Stderr)
	}
}
