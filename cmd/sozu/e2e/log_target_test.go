package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestLogTargetFileRules: `sozu start` runs as root and appends its log to
// a file:// log_target. A symbolic link planted at that path (or in its
// directory), by whoever may write there, must not make root append to the
// file it points at; the start is refused and the target left as it was.
// The relative form (opened against the working directory) was not checked
// at all; the absolute one was checked when the configuration loaded and
// then opened following links.
func TestLogTargetFileRules(t *testing.T) {
	cases := []struct {
		name   string
		target func(dir string) string // the log_target value
		plant  func(t *testing.T, dir, victim string)
	}{
		{"relative path is a symlink", func(string) string { return "file://logs/sozu.log" },
			func(t *testing.T, dir, victim string) {
				mustMkdir(t, filepath.Join(dir, "logs"))
				mustSymlink(t, victim, filepath.Join(dir, "logs", "sozu.log"))
			}},
		{"relative path below a symlinked directory", func(string) string { return "file://logs/sozu.log" },
			func(t *testing.T, dir, victim string) {
				mustSymlink(t, filepath.Dir(victim), filepath.Join(dir, "logs"))
			}},
		{"absolute path is a symlink", func(dir string) string { return "file://" + filepath.Join(dir, "logs", "sozu.log") },
			func(t *testing.T, dir, victim string) {
				mustMkdir(t, filepath.Join(dir, "logs"))
				mustSymlink(t, victim, filepath.Join(dir, "logs", "sozu.log"))
			}},
		{"relative path is a hard link", func(string) string { return "file://logs/sozu.log" },
			func(t *testing.T, dir, victim string) {
				mustMkdir(t, filepath.Join(dir, "logs"))
				if err := os.Link(victim, filepath.Join(dir, "logs", "sozu.log")); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			victimDir := filepath.Join(dir, "root-only")
			mustMkdir(t, victimDir)
			victim := filepath.Join(victimDir, "sozu.log")
			const content = "root-only content\n"
			if err := os.WriteFile(victim, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, dir, victim)
			cfgPath, _, _ := sozutest.WriteConfig(t, dir, 1, fmt.Sprintf("log_target = %q", tc.target(dir)))
			cmd := exec.Command(sozutest.Bin, "start", "-c", cfgPath)
			cmd.Dir = dir
			out := &sozutest.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			err := sozutest.RunWithTimeout(cmd, 5*time.Second)
			if err == nil || strings.Contains(err.Error(), "did not exit") {
				t.Errorf("sozu start with log_target %s: %v; want a refused start\n%s", tc.target(dir), err, out)
			}
			if b, _ := os.ReadFile(victim); string(b) != content {
				t.Errorf("the file behind the link was written: %q", b)
			}
			if !strings.Contains(out.String(), "log_target") {
				t.Errorf("the refusal does not name log_target:\n%s", out)
			}
		})
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o750); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestLogTargetFile: a file:// log_target that is a plain path (its
// directory missing) is created 0640 in a directory created 0750 and takes
// the supervisor's log.
func TestLogTargetFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, `log_target = "file://logs/sozu.log"`)
	sozutest.Start(t, dir, cfgPath, sock)
	logPath := filepath.Join(dir, "logs", "sozu.log")
	sozutest.WaitFor(t, 10*time.Second, "the log file holds 'command socket ready'", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "command socket ready")
	})
	for p, want := range map[string]os.FileMode{logPath: 0o640, filepath.Dir(logPath): 0o750 | os.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v %v; want mode %v", p, fi.Mode(), err, want)
		}
	}
}

// TestStalledFIFOLogTargetStillStops: log_target is a FIFO (allowed, as
// for audit sinks) whose reader stopped reading, a hung log shipper. Once
// the pipe is full, logrotate's SIGHUP and then SIGTERM must still stop
// the supervisor: its writer waited in write(2) for ever, holding the
// reopen, hence the signal goroutine, and the exit.
func TestStalledFIFOLogTargetStillStops(t *testing.T) {
	var rfd int
	r := startAccessRig(t, func(dir string) string {
		logs := filepath.Join(dir, "logs")
		if err := os.Mkdir(logs, 0o750); err != nil {
			t.Fatal(err)
		}
		fifo := filepath.Join(logs, "main.fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if rfd, err = unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(rfd) })                // never read; closing frees a stuck writer
		unix.FcntlInt(uintptr(rfd), unix.F_SETPIPE_SZ, 4096) // fills after a few records
		return fmt.Sprintf("log_target = \"file://%s\"", fifo)
	})
	for i := range 100 { // access records on the main target: far more than 4 KiB
		get(t, r.front, fmt.Sprintf("/fill-%d", i))
	}
	if err := r.p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The supervisor takes its signals one at a time, in the order they
	// came: once the SIGHUP is no longer pending, the SIGTERM comes after
	// it, while the reopen waits on the full FIFO.
	sozutest.WaitFor(t, 10*time.Second, "the supervisor takes the SIGHUP", func() bool {
		return !signalPending(t, r.p.Cmd.Process.Pid, syscall.SIGHUP)
	})
	if err := r.p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.p.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not exit within 30 s of SIGTERM, its log_target FIFO full")
	}
}

// signalPending reports whether sig is pending for process pid, sent to it
// and not yet delivered to any of its threads (/proc/pid/status).
func signalPending(t *testing.T, pid int, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k != "ShdPnd" && k != "SigPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%s %q: %v", k, v, err)
		}
		if mask&(1<<(sig-1)) != 0 {
			return true
		}
	}
	return false
}

// TestStalledStdoutStillStops: log_target is stdout, a pipe whose reader
// stopped reading (`sozu start | consumer`, the consumer hung). Writing
// stdout has no deadline; once the pipe is full, SIGTERM must still stop
// the supervisor: closing the log targets at exit waited for the stuck
// writer for ever.
func TestStalledStdoutStillStops(t *testing.T) {
	dir := t.TempDir()
	front, tcpFront := freeAddr(t), freeAddr(t)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(accessConfig(sock, front, tcpFront, okOrigin(t).addr, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()                                // never read
	unix.FcntlInt(r.Fd(), unix.F_SETPIPE_SZ, 4096) // fills after a few records
	p := sozutest.StartWith(t, dir, cfg, sock, func(c *exec.Cmd) { c.Stdout = w })
	w.Close()
	waitListening(t, front)
	for i := range 100 { // access records on stdout: far more than 4 KiB
		get(t, front, fmt.Sprintf("/fill-%d", i))
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not exit within 30 s of SIGTERM, its stdout full")
	}
}
