package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestSIGHUPDuringStartIsCaught: logrotate's SIGHUP may reach the
// supervisor while it is still starting its workers. It reopens the logs;
// it never takes the signal's default action (exit). The signals start once
// the audit trail exists (the supervisor's first act) and go on until the
// command socket answers.
func TestSIGHUPDuringStartIsCaught(t *testing.T) {
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.log")
	cfg, sock, _ := sozutest.WriteConfig(t, dir, 2, "audit_logs_target = \""+auditLog+"\"")
	cmd := exec.Command(sozutest.Bin, "start", "-c", cfg)
	out := &sozutest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	alive := func() bool {
		select {
		case err := <-done:
			t.Fatalf("sozu exited during start under SIGHUP: %v\n%s", err, out)
		default:
		}
		return true
	}
	sozutest.WaitFor(t, 20*time.Second, "the audit trail to exist", func() bool {
		_, err := os.Stat(auditLog)
		return alive() && err == nil
	})
	// A SIGHUP every millisecond until the command socket answers.
	stop := make(chan struct{})
	var sent int
	hups := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				hups <- n
				return
			case <-time.After(time.Millisecond):
				if cmd.Process.Signal(syscall.SIGHUP) == nil {
					n++
				}
			}
		}
	}()
	sozutest.WaitFor(t, 20*time.Second, "the command socket to answer", func() bool {
		alive()
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	close(stop)
	sent = <-hups
	if _, _, code := (&sozutest.Proxy{Sock: sock, CfgPath: cfg}).CLI("status"); code != 0 {
		t.Fatalf("sozu status after %d SIGHUP during start: exit %d\n%s", sent, code, out)
	}
	alive()
	t.Logf("%d SIGHUP sent during start", sent)
}
