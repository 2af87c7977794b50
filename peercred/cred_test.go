package peercred

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a listener on an abstract unix socket: no file-system
// permissions, so a child running as another uid can connect.
func listen(t *testing.T) (*net.UnixListener, string) {
	t.Helper()
	addr := fmt.Sprintf("@peercred-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l, addr
}

func accept(t *testing.T, l *net.UnixListener) *net.UnixConn {
	t.Helper()
	l.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// selfComm is what /proc/self/comm holds for the test binary.
func selfComm() string {
	n := filepath.Base(os.Args[0])
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

func checkSelf(t *testing.T, c Cred) {
	t.Helper()
	if !c.Known || c.UID != uint32(os.Getuid()) || c.GID != uint32(os.Getgid()) || c.PID != int32(os.Getpid()) {
		t.Fatalf("cred = %+v, want uid %d gid %d pid %d", c, os.Getuid(), os.Getgid(), os.Getpid())
	}
	if c.Start == 0 {
		t.Fatalf("start time not captured for a live peer: %+v", c)
	}
	if got := (Proc{}).Comm(c); got != selfComm() {
		t.Fatalf("Comm = %q, want %q", got, selfComm())
	}
}

func TestFromConnListener(t *testing.T) {
	l, addr := listen(t)
	d, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := FromConn(accept(t, l))
	if err != nil {
		t.Fatal(err)
	}
	checkSelf(t, c)
}

func TestFromConnSocketpair(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "socketpair")
	defer f.Close()
	fc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	c, err := FromConn(fc.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	checkSelf(t, c)
}

func TestFromConnErrors(t *testing.T) {
	if _, err := FromConn(nil); err == nil {
		t.Error("nil connection accepted")
	}
	// A datagram socket that is not connected has no peer.
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@peercred-dgram-" + strconv.Itoa(os.Getpid()), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := FromConn(c)
	if err == nil && cred.Known && cred.PID != 0 {
		t.Errorf("unconnected datagram socket has a peer: %+v", cred)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run the peer as another uid")
	}
}

// TestChildOtherUIDThenExits: a peer running as nobody with a supplementary
// group is seen with exactly those ids; once it has exited and been reaped,
// its comm is Unknown.
func TestChildOtherUIDThenExits(t *testing.T) {
	requireRoot(t)
	l, addr := listen(t)
	cmd := childPeer(t, addr, "65534:65534:65534,4242", "sleep")
	c, err := FromConn(accept(t, l))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Known || c.UID != 65534 || c.GID != 65534 || c.PID != int32(cmd.Process.Pid) || c.Start == 0 {
		t.Fatalf("cred = %+v, want uid/gid 65534, pid %d, a start time", c, cmd.Process.Pid)
	}
	if !slices.Contains(c.Groups, 4242) || !c.InGroup(4242) || c.InGroup(0) {
		t.Fatalf("groups = %v, want 4242 among them and not 0", c.Groups)
	}
	waitComm(t, c, "sleep")

	cmd.Process.Kill()
	cmd.Wait()
	if got := (Proc{}).Comm(c); got != Unknown {
		t.Fatalf("Comm after the peer exited = %q, want %q", got, Unknown)
	}
}

// waitComm waits for the child's exec of sleep to show in its comm.
func waitComm(t *testing.T, c Cred, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := (Proc{}).Comm(c)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Comm = %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChildGoneBeforeAccept: a peer that connected and was reaped before
// the accept has credentials but no start time, hence no comm.
func TestChildGoneBeforeAccept(t *testing.T) {
	l, addr := listen(t)
	cmd := childPeer(t, addr, "", "exit")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("peer: %v", err)
	}
	c, err := FromConn(accept(t, l))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Known || c.PID != int32(cmd.Process.Pid) || c.Start != 0 {
		t.Fatalf("cred = %+v, want pid %d and no start time", c, cmd.Process.Pid)
	}
	if got := (Proc{}).Comm(c); got != Unknown {
		t.Fatalf("Comm = %q, want %q", got, Unknown)
	}
}

// startWithPID starts name (which must block) so that it gets PID pid, by
// setting the PID namespace's last allocated PID. It skips the test when
// that is not possible here (no privilege, or other processes keep taking
// the PID first).
func startWithPID(t *testing.T, pid int, name string, args ...string) *exec.Cmd {
	t.Helper()
	const knob = "/proc/sys/kernel/ns_last_pid"
	for range 100 {
		if err := os.WriteFile(knob, []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot steer PID allocation: %v", err)
		}
		cmd := exec.Command(name, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Skipf("could not get PID %d back: other processes took it", pid)
	return nil
}

func procComm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:len(b)-1])
}

// TestPIDReusedAfterCapture: the peer's PID is given to another process
// (tail) after the capture; Comm answers Unknown, never "tail".
func TestPIDReusedAfterCapture(t *testing.T) {
	requireRoot(t)
	l, addr := listen(t)
	cmd := childPeer(t, addr, "", "sleep")
	c, err := FromConn(accept(t, l))
	if err != nil {
		t.Fatal(err)
	}
	waitComm(t, c, "sleep")
	cmd.Process.Kill()
	cmd.Wait()
	waitTickAfter(t, c.Start) // tail starts a later clock tick than the peer
	other := startWithPID(t, int(c.PID), "tail", "-f", "/dev/null")
	waitProcComm(t, other.Process.Pid, "tail")
	if got := (Proc{}).Comm(c); got != Unknown {
		t.Fatalf("Comm = %q for a PID now held by tail, want %q", got, Unknown)
	}
}

// TestPIDReusedBeforeAccept: the peer exits and its PID goes to another
// process before the accept. With SO_PEERPIDFD the capture sees that the
// peer itself is gone and keeps no start time.
func TestPIDReusedBeforeAccept(t *testing.T) {
	requireRoot(t)
	l, addr := listen(t)
	cmd := childPeer(t, addr, "", "exit")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("peer: %v", err)
	}
	waitTickAfter(t, bootTick(t)) // the peer started by now: tail starts a later clock tick
	other := startWithPID(t, cmd.Process.Pid, "tail", "-f", "/dev/null")
	waitProcComm(t, other.Process.Pid, "tail")
	if _, err := (Proc{}).StartTime(int32(other.Process.Pid)); err != nil {
		t.Fatalf("the reused PID has no start time to mislead a naive capture: %v", err)
	}
	conn := accept(t, l)
	if !hasPeerPidfd(t, conn) {
		t.Skip("kernel without SO_PEERPIDFD: this window stays open (documented on FromConn)")
	}
	c, err := FromConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID != int32(cmd.Process.Pid) || c.Start != 0 {
		t.Fatalf("cred = %+v, want pid %d with no start time", c, cmd.Process.Pid)
	}
	if got := (Proc{}).Comm(c); got != Unknown {
		t.Fatalf("Comm = %q for a PID now held by tail, want %q", got, Unknown)
	}
}

// bootTick returns the time since boot in the unit of a process's start
// time (/proc/pid/stat field 22): clock ticks of CLOCK_BOOTTIME, USER_HZ
// (100) a second.
func bootTick(t *testing.T) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano()) / uint64(time.Second/100)
}

// waitTickAfter waits until the clock is past tick: a process started
// from then on has a later start time.
func waitTickAfter(t *testing.T, tick uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for bootTick(t) <= tick {
		if time.Now().After(deadline) {
			t.Fatalf("clock tick still %d, not past %d", bootTick(t), tick)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}

func waitProcComm(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for procComm(t, pid) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d comm = %q, want %q", pid, procComm(t, pid), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasPeerPidfd(t *testing.T, c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	rc.Control(func(fd uintptr) {
		var pfd int
		pfd, perr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		if perr == nil {
			unix.Close(pfd)
		}
	})
	return perr == nil || errors.Is(perr, unix.ESRCH)
}

func TestCredString(t *testing.T) {
	tests := []struct {
		c    Cred
		want string
	}{
		{Cred{}, "unknown"},
		{Cred{Known: true, UID: 1000, GID: 100, PID: 42}, "uid=1000 gid=100 pid=42"},
		{Cred{Known: true, UID: 0, GID: 0, Groups: []uint32{0, 27}, PID: 1}, "uid=0 gid=0 groups=0,27 pid=1"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v: String = %q, want %q", tt.c, got, tt.want)
		}
	}
	if (Cred{GID: 0}).InGroup(0) {
		t.Error("a Cred that is not Known is in group 0")
	}
}
