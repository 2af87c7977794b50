package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// reloadConfig is a configuration with one HTTP listener at front and the
// clusters given, plus an audit trail in dir/audit.
func reloadConfig(dir, sock, front, clusters string) string {
	return fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true
command_allowed_uids = [0, 65534]
command_socket_group = "nogroup"
audit_logs_json_target = %q

[[listeners]]
protocol = "http"
address = %q
%s`, sock, filepath.Join(dir, "audit", "audit.jsonl"), front, clusters)
}

// nameOrigin answers 200 with its name.
func nameOrigin(t *testing.T, name string) *httpOrigin {
	return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}))
}

// getHost sends GET / for host through front and returns the status and body.
func getHost(c *http.Client, front, host string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+front+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestReloadUnderTraffic: `sozu reload -f` adds a cluster, a backend and a
// frontend, moves a backend to a new address and removes a frontend while
// a loop of requests runs through two workers: no request fails, the
// answer lists each change, every request of the reload is audited with
// the reload id, and `sozu audit verify` passes over the trail. A second
// reload of the same file changes nothing and says so, in --json too; a
// change of worker_count is reported as needing a restart.
func TestReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	oldA, newA, newA1, api := nameOrigin(t, "old"), nameOrigin(t, "new"), nameOrigin(t, "new"), nameOrigin(t, "api")

	p := startProxy(t, dir, sock, reloadConfig(dir, sock, front, fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" }, { address = %[1]q, hostname = "old.test" } ]
backends = [ { address = %[2]q, backend_id = "app-0" } ]
`, front, oldA.addr)), front)

	// The traffic loop: keep-alive requests to app.test, every one must
	// be a 200 from the app cluster.
	var total, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := getHost(c, front, "app.test")
				total.Add(1)
				if err != nil || code != 200 || (body != "old" && body != "new") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d body %q err %v", code, body, err))
				}
			}
		}()
	}
	sozutest.WaitFor(t, 20*time.Second, "traffic flows", func() bool { return total.Load() > 50 })

	next := filepath.Join(dir, "next.toml")
	if err := os.WriteFile(next, []byte(reloadConfig(dir, sock, front, fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" } ]
backends = [ { address = %[2]q, backend_id = "app-0" }, { address = %[3]q, backend_id = "app-1" } ]

[clusters.api]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "api.test" } ]
backends = [ { address = %[4]q, backend_id = "api-0" } ]
`, front, newA.addr, newA1.addr, api.addr))), 0o600); err != nil {
		t.Fatal(err)
	}
	out := p.MustCLI("reload", "-f", next)
	before := total.Load()
	sozutest.WaitFor(t, 20*time.Second, "more traffic after the reload", func() bool { return total.Load() > before+50 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %v", n, total.Load(), firstErr.Load())
	}
	t.Logf("reload answer:\n%s\n%d requests, none failed", out, total.Load())
	for _, want := range []string{
		"Successfully loaded the config:",
		"added:\n", "cluster api", "backend app/app-1 " + newA1.addr, "frontend http " + front + ";api.test;P → api",
		"changed:\n", "backend app/app-0 " + oldA.addr + " → " + newA.addr,
		"removed:\n", "frontend http " + front + ";old.test;P → app",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the answer lacks %q:\n%s", want, out)
		}
	}

	// The proxy now routes as the file says.
	c := &http.Client{Timeout: 10 * time.Second}
	for host, want := range map[string]string{"api.test": "api", "app.test": "new"} {
		for range 4 {
			if code, body, err := getHost(c, front, host); err != nil || code != 200 || body != want {
				t.Errorf("%s after the reload: %d %q %v, want 200 %q", host, code, body, err, want)
			}
		}
	}
	if code, _, err := getHost(c, front, "old.test"); err != nil || code == 200 {
		t.Errorf("old.test after the reload: %d %v, want its frontend gone", code, err)
	}

	// Every request of the reload has an attempt and a completion record
	// naming the reload.
	id := regexp.MustCompile(`\(reload ([0-9A-Z]+) of `).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no reload id in the answer:\n%s", out)
	}
	steps := regexp.MustCompile(`step \d+/(\d+)`)
	jsonPath := filepath.Join(dir, "audit", "audit.jsonl")
	var attempts, completions, n int
	ulids := map[string]int{} // each step's attempt and completion share a request id
	for _, line := range jsonLines(t, jsonPath) {
		var rec struct {
			Code        string `json:"code"`
			Reason      string `json:"reason"`
			RequestULID string `json:"request_ulid"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if !strings.Contains(rec.Reason, "reload "+id[1]+" step ") {
			continue
		}
		if m := steps.FindStringSubmatch(rec.Reason); m != nil {
			fmt.Sscan(m[1], &n)
		}
		switch rec.Code {
		case "SZ1000": // command attempt
			attempts++
			ulids[rec.RequestULID]++
		case "SZ1001": // command completed
			completions++
			ulids[rec.RequestULID]++
		default:
			t.Errorf("a record of reload %s with code %s: %s", id[1], rec.Code, line)
		}
	}
	if n == 0 || attempts != n || completions != n || len(ulids) != n {
		t.Errorf("audit: %d attempt and %d completion records (%d request ids) name reload %s, want one of each per step (%d)", attempts, completions, len(ulids), id[1], n)
	}
	for u, c := range ulids {
		if c != 2 {
			t.Errorf("audit: request %s of reload %s has %d records, want an attempt and a completion", u, id[1], c)
		}
	}
	if out, errOut, code := p.CLI("audit", "verify", jsonPath); code != 0 {
		t.Errorf("sozu audit verify: exit %d\n%s%s", code, out, errOut)
	}

	// The same file again: nothing to change. worker_count changed:
	// reported, not applied.
	doc, errOut, code := p.CLI("--json", "reload", "-f", next)
	var env struct{ Status, Message string }
	if err := json.Unmarshal([]byte(doc), &env); err != nil || code != 0 || env.Status != "OK" || !strings.Contains(env.Message, "nothing to change") {
		t.Errorf("second reload --json: exit %d %v, want OK saying nothing to change\n%s%s", code, err, doc, errOut)
	}
	data, _ := os.ReadFile(next)
	os.WriteFile(next, []byte(strings.Replace(string(data), "worker_count = 2", "worker_count = 3", 1)), 0o600)
	out = p.MustCLI("reload", "-f", next)
	if !strings.Contains(out, "needs a restart or an upgrade:\n  worker_count: 2 → 3") {
		t.Errorf("a worker_count change is not reported as needing a restart:\n%s", out)
	}
	if st := p.MustCLI("status"); !regexp.MustCompile(`last reload: \S+ ok: Successfully loaded the config`).MatchString(st) {
		t.Errorf("status does not show the last reload:\n%s", st)
	}
}

// TestReloadInvalidFileChangesNothing: a file with a syntax error, and one
// with a semantic error (an HTTP frontend on a TCP listener), are refused
// with their file:line, and the state is what it was.
func TestReloadInvalidFileChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	origin := nameOrigin(t, "app")
	p := startProxy(t, dir, sock, reloadConfig(dir, sock, front, fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" } ]
backends = [ { address = %[2]q } ]
`, front, origin.addr)), front)
	before := p.MustCLI("--json", "frontend", "list")
	tcp := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	for _, tc := range []struct {
		name, body, want string
	}{
		{"syntax.toml", "command_socket = \"x\"\n[clusters.api\nprotocol = \"http\"\n", `syntax\.toml:3:\d+: syntax error`},
		{"semantic.toml", reloadConfig(dir, sock, front, fmt.Sprintf(`
[[listeners]]
protocol = "tcp"
address = %[1]q

[clusters.api]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "api.test" } ]
backends = [ { address = %[2]q } ]
`, tcp, origin.addr)), `semantic\.toml:19:\d+: clusters\.api\.frontends\[0\]\.address: `},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := p.CLI("reload", "-f", path)
		if code != 1 || !regexp.MustCompile(tc.want).MatchString(errOut) || !strings.Contains(errOut, "nothing changed") {
			t.Errorf("%s: exit %d, want 1 naming %q and saying nothing changed\nstdout: %s\nstderr: %s", tc.name, code, tc.want, out, errOut)
		}
	}
	if after := p.MustCLI("--json", "frontend", "list"); after != before {
		t.Errorf("the frontends changed:\nbefore: %s\nafter: %s", before, after)
	}
	if st := p.MustCLI("status"); !strings.Contains(st, "last reload: ") || !strings.Contains(st, " failed: ") {
		t.Errorf("status does not show the failed reload:\n%s", st)
	}
}

// TestReloadPathReadAsClient: an admin client (uid 65534) names a file it
// cannot read (root's, 0600): refused, naming the permission error, even
// though the supervisor (root) could read it. The same content in a file
// uid 65534 may read is applied.
func TestReloadPathReadAsClient(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the supervisor runs as root and the client as uid 65534")
	}
	// t.TempDir is 0700: uid 65534 could not reach the socket.
	dir, err := os.MkdirTemp("", "sozu-reload-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	origin := nameOrigin(t, "app")
	cfg := reloadConfig(dir, sock, front, "")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, filepath.Join(dir, "config.toml"), sock)
	next := reloadConfig(dir, sock, front, fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" } ]
backends = [ { address = %[2]q } ]
`, front, origin.addr))
	secret, open := filepath.Join(dir, "secret.toml"), filepath.Join(dir, "open.toml")
	os.WriteFile(secret, []byte(next), 0o600)
	os.WriteFile(open, []byte(next), 0o644)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	out, errOut, code := p.CLIAs(nobody, "reload", "-f", secret)
	if code != 1 || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "nothing changed") {
		t.Errorf("reload of a root-only file as uid 65534: exit %d, want 1 naming the permission error\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if l := p.MustCLI("frontend", "list"); strings.Contains(l, "app.test") {
		t.Errorf("the refused reload added a frontend:\n%s", l)
	}
	// A file uid 65534 may read, naming a key only root may read.
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issuePEM(t, nil, nil, "app.test")
	certPath, keyPath := filepath.Join(dir, "app.pem"), filepath.Join(dir, "app.key")
	os.WriteFile(certPath, certPEM, 0o644)
	os.WriteFile(keyPath, keyPEM, 0o600)
	namesKey := filepath.Join(dir, "names-key.toml")
	os.WriteFile(namesKey, []byte(next+fmt.Sprintf(`
[[listeners]]
protocol = "https"
address = "127.0.0.1:%d"
certificate = %q
key = %q
`, sozutest.FreePort(t), certPath, keyPath)), 0o644)
	out, errOut, code = p.CLIAs(nobody, "reload", "-f", namesKey)
	if code != 1 || !strings.Contains(errOut, keyPath) || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "nothing changed") {
		t.Errorf("reload of a file naming a root-only key as uid 65534: exit %d, want 1 naming the key\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if l := p.MustCLI("frontend", "list"); strings.Contains(l, "app.test") {
		t.Errorf("the refused reload added a frontend:\n%s", l)
	}

	out, errOut, code = p.CLIAs(nobody, "reload", "-f", open)
	if code != 0 || !strings.Contains(out, "cluster app") {
		t.Errorf("reload of a readable file as uid 65534: exit %d, want 0 adding cluster app\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestSdNotify: with NOTIFY_SOCKET set, the supervisor sends READY=1 once a
// worker serves, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// reload, and STOPPING=1 when it stops, in that order.
func TestSdNotify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	notifyPath := filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := l.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %s", want)
			}
			first, _, _ := strings.Cut(m, "\n")
			if first != want {
				t.Fatalf("notification %q, want %s first", m, want)
			}
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s within 30s", want)
		}
		return ""
	}
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte(reloadConfig(dir, sock, front, "")), 0o600)
	p := sozutest.StartWith(t, dir, cfgPath, sock, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	})
	next("READY=1")
	p.MustCLI("reload")
	if m := next("RELOADING=1"); !regexp.MustCompile(`(?m)^MONOTONIC_USEC=[1-9][0-9]*$`).MatchString(m) {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	next("READY=1")
	p.Stop()
	next("STOPPING=1")
}

// TestReloadListeners: a reload that adds a listener binds it in the
// supervisor and hands it to the workers, which serve on it; one that
// removes it shuts it (connections refused). An event subscriber sees the
// steps' events and CONFIGURATION_RELOADED.
func TestReloadListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	extra := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	origin := nameOrigin(t, "app")
	app := fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" } ]
backends = [ { address = %[2]q, backend_id = "app-0" } ]
`, front, origin.addr)
	p := startProxy(t, dir, sock, reloadConfig(dir, sock, front, app), front)

	events := sozutest.Dial(t, sock)
	if err := frame.WriteMessage(events.Conn, &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}, frame.DefaultMaxSize); err != nil {
		t.Fatal(err)
	}
	r := frame.NewReader(events.Conn, frame.DefaultMaxSize)
	kinds := make(chan command.EventKind, 64)
	go func() {
		defer close(kinds)
		for {
			resp := &command.Response{}
			if r.ReadMessage(resp) != nil {
				return
			}
			if ev := resp.GetContent().GetEvent(); ev != nil {
				kinds <- ev.GetKind()
			}
		}
	}()
	waitEvent := func(want command.EventKind) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case k, ok := <-kinds:
				if !ok {
					t.Fatalf("event stream closed before %v", want)
				}
				if k == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %v event within 20s", want)
			}
		}
	}
	waitEvent(command.EventKind_EVENTS_SUBSCRIBED)

	next := filepath.Join(dir, "next.toml")
	os.WriteFile(next, []byte(reloadConfig(dir, sock, front, app+fmt.Sprintf(`
[[listeners]]
protocol = "http"
address = %[1]q

[clusters.more]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "more.test" } ]
backends = [ { address = %[2]q } ]
`, extra, origin.addr))), 0o600)
	out := p.MustCLI("reload", "-f", next)
	if !strings.Contains(out, "added:\n  listener http "+extra+"\n") {
		t.Errorf("the answer does not list the new listener:\n%s", out)
	}
	waitEvent(command.EventKind_LISTENER_ADDED)
	waitEvent(command.EventKind_CONFIGURATION_RELOADED)
	c := &http.Client{Timeout: 10 * time.Second}
	if code, body, err := getHost(c, extra, "more.test"); err != nil || code != 200 || body != "app" {
		t.Errorf("through the new listener: %d %q %v", code, body, err)
	}

	os.WriteFile(next, []byte(reloadConfig(dir, sock, front, app)), 0o600)
	out = p.MustCLI("reload", "-f", next)
	if !strings.Contains(out, "removed:\n") || !strings.Contains(out, "  listener http "+extra) {
		t.Errorf("the answer does not list the removed listener:\n%s", out)
	}
	waitEvent(command.EventKind_LISTENER_REMOVED)
	if conn, err := net.DialTimeout("tcp", extra, 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after its listener was removed", extra)
	}
	if code, body, err := getHost(c, front, "app.test"); err != nil || code != 200 || body != "app" {
		t.Errorf("the kept listener: %d %q %v", code, body, err)
	}
}
