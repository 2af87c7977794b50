package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestCtlCommandTimeout: ctl_command_timeout (upstream's key, milliseconds
// here as upstream) is the CLI's deadline for a verb without -t. Against a
// supervisor that answers nothing (stopped by SIGSTOP), `sozu status`
// gives up after it, well before the 10 s default.
func TestCtlCommandTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, "ctl_command_timeout = 300")
	p := sozutest.Start(t, dir, cfgPath, sock)
	pid := p.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	start := time.Now()
	_, errOut, code := p.CLI("status")
	took := time.Since(start)
	if code == 0 {
		t.Fatalf("status answered by a stopped supervisor: exit 0")
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("status gave up after %v, want about ctl_command_timeout (300 ms); stderr: %s", took, errOut)
	}
	if !strings.Contains(strings.ToLower(errOut), "time") {
		t.Errorf("stderr does not say the verb timed out: %q", errOut)
	}
}
