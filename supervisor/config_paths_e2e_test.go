package supervisor_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestConfigNamedPathsRefused runs `sozu config check` and `sozu start` on
// configurations naming files the supervisor must not use: each exits 78
// (invalid configuration) promptly, with a message naming the key, the
// path and the reason, and nothing is served or created behind the path.
func TestConfigNamedPathsRefused(t *testing.T) {
	cases := []struct {
		name  string
		verb  string // "check" or "start"
		setup func(t *testing.T, dir string) (extra, listener string)
		want  []string
	}{
		{"answer_404 symlinked to a root-only file", "check", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "shadow"), []byte("root:secret\n"), 0o600)
			os.Symlink(filepath.Join(dir, "shadow"), filepath.Join(dir, "404.http"))
			return "", `answer_404 = "404.http"`
		}, []string{"listeners[0].answer_404: refusing 404.http: is a symbolic link"}},
		{"answer_404 symlinked, at start", "start", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "shadow"), []byte("root:secret\n"), 0o600)
			os.Symlink(filepath.Join(dir, "shadow"), filepath.Join(dir, "404.http"))
			return "", `answer_404 = "404.http"`
		}, []string{"listeners[0].answer_404: refusing 404.http: is a symbolic link"}},
		{"world-writable answer file", "check", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "404.http")
			os.WriteFile(p, []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), 0o666)
			os.Chmod(p, 0o666)
			return "", `answer_404 = "404.http"`
		}, []string{"listeners[0].answer_404: refusing 404.http: is writable by group or others (mode 0666)"}},
		{"answer_404 = /dev/zero", "check", func(t *testing.T, dir string) (string, string) {
			return "", `answer_404 = "/dev/zero"`
		}, []string{"listeners[0].answer_404: refusing /dev/zero: is a character device, not a regular file"}},
		{"answer_404 is a FIFO", "check", func(t *testing.T, dir string) (string, string) {
			if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "", `answer_404 = "fifo"`
		}, []string{"listeners[0].answer_404: refusing fifo: is a FIFO, not a regular file"}},
		{"audit sink directory symlinked", "start", func(t *testing.T, dir string) (string, string) {
			victim := t.TempDir()
			os.Symlink(victim, filepath.Join(dir, "log"))
			return `audit_logs_target = "log/audit.log"`, ""
		}, []string{"audit_logs_target: refusing log/audit.log: " + "DIR/log is a symbolic link"}},
		{"audit sink owned by another user", "start", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "audit.log")
			os.WriteFile(p, nil, 0o640)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return `audit_logs_target = "audit.log"`, ""
		}, []string{"audit_logs_target: refusing audit.log: is owned by uid 65534"}},
		{"value nested 10^5 deep", "check", func(t *testing.T, dir string) (string, string) {
			return "deep = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000), ""
		}, []string{"nesting deeper than 64 levels"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			extra, listener := c.setup(t, dir)
			cfg, sock, _ := writeConfig(t, dir, 1, extra)
			if listener != "" {
				f, err := os.OpenFile(cfg, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(f, listener)
				f.Close()
			}
			args := []string{"config", "check", "-c", cfg}
			if c.verb == "start" {
				args = []string{"start", "-c", cfg}
			}
			var out sozutest.SyncBuffer
			cmd := exec.Command(sozutest.Bin, args...)
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := runWithTimeout(cmd, 30*time.Second)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 78 {
				t.Fatalf("sozu %s: %v (want exit 78) after %v\n%s", strings.Join(args, " "), err, time.Since(start), out.String())
			}
			for _, w := range c.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if _, err := os.Stat(sock); err == nil {
				t.Errorf("the command socket was created")
			}
		})
	}
}
