package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestPIDFile: pid_file_path is written at start (mode 0644, the
// supervisor's pid), a second supervisor naming the same file refuses to
// start while the first runs, the file is removed at a clean stop, and a
// stale file naming a dead process is replaced with a warning.
func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(run, "sozu.pid")
	extra := fmt.Sprintf("pid_file_path = %q", pidFile)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, extra)
	p := sozutest.Start(t, dir, cfgPath, sock)
	read := func() string {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return ""
		}
		return string(b)
	}
	if got, want := read(), strconv.Itoa(p.Cmd.Process.Pid)+"\n"; got != want {
		t.Fatalf("PID file holds %q, want %q", got, want)
	}
	if fi, err := os.Stat(pidFile); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("PID file mode %v (%v), want 0644", fi.Mode(), err)
	}

	// A second supervisor with the same PID file (another socket and
	// port) refuses to start, and leaves the file alone.
	dir2 := t.TempDir()
	cfg2, _, _ := sozutest.WriteConfig(t, dir2, 1, extra)
	second := exec.Command(sozutest.Bin, "start", "-c", cfg2)
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	err := sozutest.RunWithTimeout(second, 30*time.Second)
	if err == nil || !strings.Contains(out.String(), fmt.Sprintf("names pid %d, a running sozu", p.Cmd.Process.Pid)) {
		t.Fatalf("second start: %v\n%s", err, out.String())
	}
	if got := read(); got != strconv.Itoa(p.Cmd.Process.Pid)+"\n" {
		t.Fatalf("the refused start changed the PID file to %q", got)
	}

	p.MustCLI("shutdown")
	select {
	case <-p.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("the PID file survived a clean stop: %v (%q)", err, read())
	}

	// A stale file: its pid is a process that has exited.
	gone := exec.Command("/bin/true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(gone.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p2 := sozutest.Start(t, dir, cfgPath, sock)
	if got := read(); got != strconv.Itoa(p2.Cmd.Process.Pid)+"\n" {
		t.Fatalf("the stale PID file was not replaced: %q", got)
	}
	if !strings.Contains(p2.Out.String(), "replacing a stale PID file") {
		t.Errorf("no warning about the stale PID file:\n%s", p2.Out.String())
	}
}
