package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// tmuxPane is a shell in a detached tmux session on a private server.
type tmuxPane struct {
	t    *testing.T
	sock string
}

func startTmux(t *testing.T, dir string, w, h int) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	p := &tmuxPane{t: t, sock: filepath.Join(dir, "tmux.sock")}
	p.run("-f", "/dev/null", "new-session", "-d", "-s", "top", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h),
		"env", "-i", "PATH="+os.Getenv("PATH"), "HOME="+dir, "TERM=xterm-256color", "PS1=$ ", "bash", "--norc", "--noprofile")
	t.Cleanup(func() { exec.Command("tmux", "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *tmuxPane) run(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (p *tmuxPane) keys(keys ...string) {
	p.run(append([]string{"send-keys", "-t", "top"}, keys...)...)
}

func (p *tmuxPane) screen() string { return p.run("capture-pane", "-p", "-t", "top") }

// styled is the screen with its colours and attributes as SGR sequences.
func (p *tmuxPane) styled() string { return p.run("capture-pane", "-p", "-e", "-t", "top") }

// waitScreen waits until the screen satisfies cond and returns it.
func (p *tmuxPane) waitScreen(d time.Duration, what string, cond func(string) bool) string {
	p.t.Helper()
	var s string
	deadline := time.Now().Add(d)
	for {
		if s = p.screen(); cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting for %s; the screen:\n%s", d, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

// TestTopInTmux runs `sozu top` in a real terminal (tmux) against a proxy
// with two clusters, one of them under load, and reads the screen: both
// cluster ids, the busy one's request rate, the listener, and the event of
// a backend removed meanwhile; q then exits 0 with the terminal's modes as
// they were, and the shell answers.
func TestTopInTmux(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "sozu-top-") // short: tmux and sozu sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	busy := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("busy")) }))
	idle0 := startHTTPOrigin(t, nil)
	idle1 := startHTTPOrigin(t, nil)
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %q

[clusters.busy-shop]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "busy.test" } ]
backends = [ { address = %[3]q, backend_id = "busy-0" } ]

[clusters.idle-blog]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "idle.test" } ]
backends = [ { address = %[4]q, backend_id = "idle-0" }, { address = %[5]q, backend_id = "idle-1" } ]
`, sock, front, busy.addr, idle0.addr, idle1.addr)
	p := startProxy(t, dir, sock, cfg, front)

	// Live traffic on busy-shop until the test ends.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", "http://"+front+"/", nil)
			req.Host = "busy.test"
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})

	tm := startTmux(t, dir, 160, 40)
	tm.waitScreen(10*time.Second, "the shell prompt", contains("$"))
	tm.keys("stty -g > "+filepath.Join(dir, "stty.before"), "Enter")
	tm.keys(fmt.Sprintf("%s -c %s top; echo top-exit=$?", sozutest.Bin, p.CfgPath), "Enter")
	tm.waitScreen(20*time.Second, "the overview", contains("1 OVERVIEW", "recent events", "EVENTS_SUBSCRIBED"))

	tm.keys("2")
	tm.waitScreen(20*time.Second, "both clusters", contains("CLUSTERS · 2", "busy-shop", "idle-blog"))
	tm.waitScreen(20*time.Second, "a non-zero request rate on busy-shop", func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(strings.TrimPrefix(l, "!"))
			if len(f) > 1 && f[0] == "busy-shop" {
				v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(f[1], "k"), "M"), 64)
				return err == nil && v > 0
			}
		}
		return false
	})

	tm.keys("4")
	tm.waitScreen(10*time.Second, "the listener", contains("LISTENERS · 1", "http  "+front))
	if st := tm.styled(); !strings.Contains(st, "\x1b[38;") {
		t.Errorf("no colour on a colour terminal (the active listener is green):\n%q", st)
	}

	tm.keys("7")
	tm.waitScreen(10*time.Second, "the events pane", contains("EVENTS ·", "EVENTS_SUBSCRIBED"))
	p.MustCLI("backend", "remove", "--id", "idle-blog", "--backend-id", "idle-1", "--address", idle1.addr)
	tm.waitScreen(5*time.Second, "the removed backend's event", contains("REMOVED_BACKEND_HAS_NO_CONNECTIONS cluster=idle-blog backend=idle-1"))

	tm.keys("q")
	tm.waitScreen(10*time.Second, "top to exit", contains("top-exit="))
	tm.keys("stty -g > "+filepath.Join(dir, "stty.after")+"; echo usable-$((40+2))", "Enter")
	s := tm.waitScreen(10*time.Second, "the shell after top", contains("usable-42"))
	if !strings.Contains(s, "top-exit=0") {
		t.Errorf("sozu top did not exit 0:\n%s", s)
	}
	if strings.Contains(s, "1 OVERVIEW") {
		t.Errorf("the alternate screen was not left:\n%s", s)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "stty.before"))
	after, _ := os.ReadFile(filepath.Join(dir, "stty.after"))
	if len(before) == 0 || string(before) != string(after) {
		t.Errorf("terminal modes not restored after q:\nbefore %s\nafter  %s", before, after)
	}

	// Without colours (NO_COLOR) the same screen has none; SIGTERM also
	// quits cleanly and restores the terminal.
	tm.keys("clear; NO_COLOR=1 "+sozutest.Bin+" -c "+p.CfgPath+" top; echo top-term-exit=$?", "Enter")
	tm.waitScreen(20*time.Second, "top again", contains("1 OVERVIEW", "EVENTS_SUBSCRIBED"))
	tm.keys("4")
	tm.waitScreen(10*time.Second, "the listener without colours", contains("LISTENERS · 1"))
	if st := tm.styled(); strings.Contains(st, "\x1b[38;") {
		t.Errorf("colours with NO_COLOR:\n%q", st)
	}
	shell := strings.TrimSpace(tm.run("display-message", "-p", "-t", "top", "#{pane_pid}"))
	children, err := os.ReadFile("/proc/" + shell + "/task/" + shell + "/children")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(children))[0])
	if err != nil {
		t.Fatalf("children of the shell %s: %q", shell, children)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tm.waitScreen(10*time.Second, "top to exit on SIGTERM", contains("top-term-exit="))
	tm.keys("stty -g > "+filepath.Join(dir, "stty.term")+"; echo usable-$((40+3))", "Enter")
	s = tm.waitScreen(10*time.Second, "the shell after SIGTERM", contains("usable-43"))
	if !strings.Contains(s, "top-term-exit=0") || strings.Contains(s, "1 OVERVIEW") {
		t.Errorf("sozu top after SIGTERM:\n%s", s)
	}
	if term, _ := os.ReadFile(filepath.Join(dir, "stty.term")); string(term) != string(before) {
		t.Errorf("terminal modes not restored after SIGTERM:\nbefore %s\nafter  %s", before, term)
	}
}
