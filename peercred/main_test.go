package peercred

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as the peer process: with childEnv set it
// connects to that socket (after dropping to the ids in credsEnv, if set)
// and then, per thenEnv, exits or execs sleep (same PID and start time, new
// comm "sleep").
const (
	childEnv = "PEERCRED_TEST_CONNECT"
	credsEnv = "PEERCRED_TEST_CREDS" // "uid:gid:g1,g2"
	thenEnv  = "PEERCRED_TEST_THEN"  // "exit" or "sleep"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(childEnv); addr != "" {
		os.Exit(child(addr))
	}
	os.Exit(m.Run())
}

func child(addr string) int {
	if s := os.Getenv(credsEnv); s != "" {
		var uid, gid int
		var groups string
		parts := strings.SplitN(s, ":", 3)
		uid, _ = strconv.Atoi(parts[0])
		gid, _ = strconv.Atoi(parts[1])
		groups = parts[2]
		var gs []int
		for _, g := range strings.Split(groups, ",") {
			n, _ := strconv.Atoi(g)
			gs = append(gs, n)
		}
		if err := syscall.Setgroups(gs); err != nil {
			fmt.Fprintln(os.Stderr, "setgroups:", err)
			return 3
		}
		if err := syscall.Setgid(gid); err != nil {
			fmt.Fprintln(os.Stderr, "setgid:", err)
			return 3
		}
		if err := syscall.Setuid(uid); err != nil {
			fmt.Fprintln(os.Stderr, "setuid:", err)
			return 3
		}
	}
	if _, err := net.Dial("unix", addr); err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 4
	}
	if os.Getenv(thenEnv) == "sleep" {
		sleep, err := exec.LookPath("sleep")
		if err == nil {
			err = syscall.Exec(sleep, []string{"sleep", "60"}, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "exec sleep:", err)
		return 5
	}
	return 0
}

// childPeer starts the test binary as a peer of the socket at addr. creds,
// when not empty, is "uid:gid:g1,g2" (needs root).
func childPeer(t *testing.T, addr, creds, then string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+addr, credsEnv+"="+creds, thenEnv+"="+then,
		"GORACE=atexit_sleep_ms=0") // a race-enabled child would linger 1 s at exit
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the peer process: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}
