package e2e

import (
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

// TestHungWorkerKillDeniedIsReported: a supervisor without CAP_KILL cannot
// kill a hung worker of another uid. The watchdog still starts a
// replacement, and its audit record says the old worker could not be
// killed instead of claiming it was.
func TestHungWorkerKillDeniedIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv is not installed")
	}
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.log")
	cfg, sock, _ := sozutest.WriteConfig(t, dir, 2, fmt.Sprintf("audit_logs_target = %q", auditLog))
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(data), "worker_timeout = 5", "worker_timeout = 1", 1)), 0o600)
	p := sozutest.StartWith(t, dir, cfg, sock, func(cmd *exec.Cmd) {
		cmd.Path = setpriv
		cmd.Args = append([]string{"setpriv", "--bounding-set=-kill", "--inh-caps=-all", "--"}, cmd.Args...)
	})
	hung := workerPIDs(t, sock)[0]
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hung)); err != nil || strings.Contains(string(st), "Uid:\t0\t") {
		t.Skipf("the workers run as root here: nothing for CAP_KILL to deny (%v)", err)
	}
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(hung, syscall.SIGKILL) })
	want := fmt.Sprintf("(pid %d) did not answer", hung)
	sozutest.WaitFor(t, 20*time.Second, "the watchdog's audit record of the hung worker", func() bool {
		b, _ := os.ReadFile(auditLog)
		return strings.Contains(string(b), want)
	})
	b, _ := os.ReadFile(auditLog)
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, want) {
			line = l
		}
	}
	if !strings.Contains(line, "could not be killed") || !strings.Contains(line, "operation not permitted") {
		t.Fatalf("the audit record claims what did not happen:\n%s", line)
	}
	if syscall.Kill(hung, 0) != nil {
		t.Fatalf("the hung worker %d is gone: the supervisor had CAP_KILL after all", hung)
	}
	_ = p
}
