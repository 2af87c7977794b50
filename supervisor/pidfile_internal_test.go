package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParsePIDFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pid  int
		fail string
	}{
		{"1234\n", 1234, ""},
		{" 42 ", 42, ""},
		{"", 0, "empty"},
		{"\n", 0, "empty"},
		{"12a\n", 0, "not a decimal pid"},
		{"-5", 0, "not a decimal pid"},
		{"0", 0, "not a pid"},
		{"4194305", 0, "not a pid"},
		{"99999999999999999999999", 0, "not a pid"},
		{"1 2", 0, "not a decimal pid"},
	} {
		pid, err := parsePIDFile([]byte(tc.in))
		if tc.fail == "" {
			if err != nil || pid != tc.pid {
				t.Errorf("%q: %d, %v; want %d", tc.in, pid, err, tc.pid)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.fail) {
			t.Errorf("%q: %d, %v; want an error containing %q", tc.in, pid, err, tc.fail)
		}
	}
}

func FuzzParsePIDFile(f *testing.F) {
	for _, s := range []string{"1234\n", "", "abc", "0", "4194304", " 7 \n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := parsePIDFile(b)
		if err != nil {
			return
		}
		// An accepted file round-trips through what writePIDFile writes.
		if pid < 1 || pid > 1<<22 {
			t.Fatalf("%q: accepted pid %d out of range", b, pid)
		}
		again, err := parsePIDFile([]byte(strconv.Itoa(pid) + "\n"))
		if err != nil || again != pid {
			t.Fatalf("%q: %d does not round-trip: %d %v", b, pid, again, err)
		}
	})
}

// startProc runs path with args and returns its pid; it is killed when the
// test ends.
func startProc(t *testing.T, path string, args ...string) int {
	t.Helper()
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestClaimPIDFile runs claimPIDFile against real processes: none, a dead
// pid, a live process that is not a sozu (sleep), a live "sozu" (sleep
// copied to a file named sozu), this process, and the predecessor of an
// upgrade; and against files that are no PID file.
func TestClaimPIDFile(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	fakeSozu := filepath.Join(dir, "sozu")
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fakeSozu, b, 0o755); err != nil {
		t.Fatal(err)
	}
	other := startProc(t, sleep, "60")
	sozu := startProc(t, fakeSozu, "60")
	dead := deadPID(t)
	self := os.Getpid()
	classify := func(pid int) pidHolder { return classifyPID(pid, "/usr/sbin/sozu") }

	for _, tc := range []struct {
		name        string
		content     *string // nil: no file
		symlink     bool
		predecessor int
		warn, fail  string
	}{
		{name: "no file"},
		{name: "dead pid", content: ptr(strconv.Itoa(dead) + "\n"), warn: "is not running"},
		{name: "live process that is not a sozu", content: ptr(strconv.Itoa(other)), warn: "is not a sozu"},
		{name: "live sozu", content: ptr(strconv.Itoa(sozu) + "\n"), fail: "a running sozu"},
		{name: "live sozu handing over", content: ptr(strconv.Itoa(sozu)), predecessor: sozu},
		{name: "our own pid", content: ptr(strconv.Itoa(self))},
		{name: "malformed", content: ptr("garbage"), warn: "malformed"},
		{name: "symbolic link", symlink: true, fail: "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sozu.pid")
			switch {
			case tc.symlink:
				target := filepath.Join(dir, "target")
				os.WriteFile(target, []byte("1\n"), 0o644)
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			case tc.content != nil:
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			old := readOrEmpty(path)
			warn, err := claimPIDFile(path, self, tc.predecessor, classify)
			if tc.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fail) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err %v; want one naming %s and containing %q", err, path, tc.fail)
				}
				if got := readOrEmpty(path); got != old {
					t.Fatalf("a refused claim changed the file: %q → %q", old, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.warn == "") != (warn == "") || !strings.Contains(warn, tc.warn) {
				t.Fatalf("warning %q; want one containing %q", warn, tc.warn)
			}
			if got := readOrEmpty(path); got != strconv.Itoa(self)+"\n" {
				t.Fatalf("file holds %q", got)
			}
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode() != 0o644 {
				t.Fatalf("mode %v, %v; want a regular file 0644", fi.Mode(), err)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
			// Removal only when the file still names us.
			if err := removePIDFile(path, self+1); err != nil || readOrEmpty(path) == "" {
				t.Fatalf("removePIDFile of another pid removed the file (%v)", err)
			}
			if err := removePIDFile(path, self); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Fatalf("the PID file survived its removal: %v", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func readOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
