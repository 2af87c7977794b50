package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestUpgradeKeepsInheritedWorkerLogs: a worker's log channel and its
// access log file are handed over with the rest in a main upgrade. A
// request in flight across the upgrade ends in an inherited worker after
// the old supervisor exited; its access record still reaches the access
// log. After a rotation the new supervisor hands the reopened file to the
// inherited workers.
func TestUpgradeKeepsInheritedWorkerLogs(t *testing.T) {
	origin, arrived, release := blockingOrigin(t)
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	access := filepath.Join(t.TempDir(), "access.log")
	r := startUpgradeRig(t, origin.addr, fmt.Sprintf("access_logs_target = %q\nsoft_stop_deadline = 60", "file://"+access))
	inflight := getAsync(r.front) // GET /work
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the origin")
	}
	old := r.pid(t)
	r.p.MustCLI("upgrade")
	sozutest.WaitFor(t, 30*time.Second, fmt.Sprintf("the old supervisor (pid %d) gone, the PID file naming its successor", old), func() bool {
		p := r.pid(t)
		return p != 0 && p != old && gone(old)
	})
	close(release)
	released = true
	res := <-inflight
	if res.err != nil || res.status != 200 || res.body != "finished" {
		t.Fatalf("the request in flight across the upgrade: %d %q %v", res.status, res.body, res.err)
	}
	sozutest.WaitFor(t, 10*time.Second, "the access record of GET /work", func() bool {
		b, _ := os.ReadFile(access)
		return strings.Contains(string(b), "/work")
	})
	rotate(t, access, ".1", func() { syscall.Kill(r.pid(t), syscall.SIGHUP) }, r.front, "/after-upgrade")
	r.p.MustCLI("shutdown", "--hard")
	<-r.p.Done
}
