package supervisor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/sandbox"
)

// TestWorkerLogsItsRealIdentity: a supervisor started as an unprivileged
// uid cannot drop its workers to nobody; they keep its uid. The "worker
// confined" line must say so, not name the configured account.
func TestWorkerLogsItsRealIdentity(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start the supervisor as another uid")
	}
	const uid, gid = 64123, 64124 // no account: nothing else runs as it
	// Not t.TempDir: its parent is root's, mode 0700.
	dir, err := os.MkdirTemp("", "sozu-identity-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	for _, p := range []string{dir, cfg} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p := sozutest.StartWith(t, dir, cfg, sock, func(cmd *exec.Cmd) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	})
	line := regexp.MustCompile(`msg="worker confined".*`)
	var got string
	waitFor(t, 20*time.Second, "the worker's \"worker confined\" line", func() bool {
		got = line.FindString(p.Out.String())
		return got != ""
	})
	for _, want := range []string{fmt.Sprintf(" uid=%d ", uid), fmt.Sprintf(" gid=%d ", gid)} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(got + " ") {
			t.Errorf("log line %q: want %q (the ids the worker runs as)", got, want)
		}
	}

	// The warning follows the "worker confined" line: wait for it too.
	warn := fmt.Sprintf("worker runs as uid %d gid %d, not as the worker account", uid, gid)
	waitFor(t, 20*time.Second, "the warning "+warn, func() bool { return strings.Contains(p.Out.String(), warn) })

	// And it does run as the supervisor's ids.
	pid := workerPIDFromLog(t, p)
	threads, err := sandbox.Status(pid)
	if err != nil {
		t.Fatal(err)
	}
	if th := threads[0]; th.UIDs != [4]int{uid, uid, uid, uid} || th.GIDs != [4]int{gid, gid, gid, gid} {
		t.Errorf("worker pid %d runs as uid %v gid %v, want %d and %d", pid, th.UIDs, th.GIDs, uid, gid)
	}
}

// workerPIDFromLog finds the pid in the supervisor's "worker started" line.
func workerPIDFromLog(t *testing.T, p *sozutest.Proxy) int {
	t.Helper()
	m := regexp.MustCompile(`msg="worker started" pid=(\d+)`).FindStringSubmatch(p.Out.String())
	if m == nil {
		t.Fatalf("no \"worker started\" line with a pid in:\n%s", p.Out.String())
	}
	var pid int
	fmt.Sscan(m[1], &pid)
	if _, err := os.Stat(filepath.Join("/proc", m[1])); err != nil {
		t.Fatalf("worker pid %d: %v", pid, err)
	}
	return pid
}
