package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is a real other user (uid 65534) owning files in the tests.
const nobody = 65534

// parseWithin parses data as dir/t.toml and fails the test if that takes
// longer than d (a FIFO or a device must not stall it).
func parseWithin(t *testing.T, d time.Duration, data []byte, path string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Parse(data, path)
		done <- result{c, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.c, r.err
	case <-timer.C:
		t.Fatalf("Parse of %s did not finish within %v", path, d)
		return nil, nil
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestConfigNamedPaths: files a configuration names are opened without
// following symlinks and refused when another user could have planted or
// changed them, or when they are not regular files of a sane size; each
// refusal names the key (with its position), the path and the reason.
func TestConfigNamedPaths(t *testing.T) {
	answer := "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
	cert, err := os.ReadFile("testdata/tls/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("testdata/tls/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	listener := "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nanswer_404 = %q\n"
	https := "[[listeners]]\nprotocol = \"https\"\naddress = \"0.0.0.0:443\"\ncertificate = \"cert.pem\"\nkey = %q\n"
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the TOML
		want  string                                // "" = accepted; else what one error line must hold
	}{
		{"plain answer file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "404.http"), answer, 0o644)
			return fmt.Sprintf(listener, "404.http")
		}, ""},
		{"answer_404 symlinked to a root-only file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "secret"), "root:x:0:0\n", 0o600)
			os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "404.http"))
			return fmt.Sprintf(listener, "404.http")
		}, "t.toml:4:14: listeners[0].answer_404: refusing 404.http: is a symbolic link: paths in the configuration are opened without following symlinks; name the real path"},
		{"answer_404 below a symlinked directory", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "real", "404.http"), answer, 0o644)
			os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "answers"))
			return fmt.Sprintf(listener, "answers/404.http")
		}, "listeners[0].answer_404: refusing answers/404.http: DIR/answers is a symbolic link"},
		{"world-writable answer file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "404.http"), answer, 0o646)
			return fmt.Sprintf(listener, "404.http")
		}, "t.toml:4:14: listeners[0].answer_404: refusing 404.http: is writable by group or others (mode 0646): chmod go-w"},
		{"group-writable answer file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "404.http"), answer, 0o664)
			return fmt.Sprintf(listener, "404.http")
		}, "refusing 404.http: is writable by group or others (mode 0664)"},
		{"answer file owned by another user", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "404.http"), answer, 0o644)
			chown(t, filepath.Join(dir, "404.http"), nobody)
			return fmt.Sprintf(listener, "404.http")
		}, "refusing 404.http: is owned by uid 65534: only root or this process's user"},
		{"answer file over 1 MiB", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "404.http"), answer+strings.Repeat("x", 1<<20), 0o644)
			return fmt.Sprintf(listener, "404.http")
		}, "refusing 404.http: is 1048621 bytes long: the limit is 1 MiB"},
		{"answer_404 hard-linked to a root-only file", func(t *testing.T, dir string) string {
			// /etc/shadow is root-owned and not writable by others: owner
			// and mode rules alone would serve it. A second name is refused.
			writeFile(t, filepath.Join(dir, "shadow"), "root:$6$salt$hash:19000:0:99999:7:::\n", 0o640)
			if err := os.Link(filepath.Join(dir, "shadow"), filepath.Join(dir, "404.http")); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf(listener, "404.http")
		}, "t.toml:4:14: listeners[0].answer_404: refusing 404.http: has 2 hard links"},
		{"file:// answer hard-linked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "secret"), "x", 0o600)
			if err := os.Link(filepath.Join(dir, "secret"), filepath.Join(dir, "a.http")); err != nil {
				t.Fatal(err)
			}
			return "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nanswers = { 404 = \"file://a.http\" }\n"
		}, "listeners[0].answers.404: refusing a.http: has 2 hard links"},
		{"answer_404 = /dev/zero", func(t *testing.T, dir string) string {
			return fmt.Sprintf(listener, "/dev/zero")
		}, "t.toml:4:14: listeners[0].answer_404: refusing /dev/zero: is a character device, not a regular file"},
		{"answer_404 is a FIFO", func(t *testing.T, dir string) string {
			if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf(listener, "fifo")
		}, "listeners[0].answer_404: refusing fifo: is a FIFO, not a regular file"},
		{"file:// answer symlinked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "secret"), "x", 0o600)
			os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "a.http"))
			return "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nanswers = { 404 = \"file://a.http\" }\n"
		}, "listeners[0].answers.404: refusing a.http: is a symbolic link"},
		{"key symlinked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "cert.pem"), string(cert), 0o644)
			writeFile(t, filepath.Join(dir, "real.key"), string(key), 0o600)
			os.Symlink(filepath.Join(dir, "real.key"), filepath.Join(dir, "key.pem"))
			return fmt.Sprintf(https, "key.pem")
		}, "t.toml:5:7: listeners[0].key: refusing key.pem: is a symbolic link"},
		{"key owned by another user", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "cert.pem"), string(cert), 0o644)
			writeFile(t, filepath.Join(dir, "key.pem"), string(key), 0o600)
			chown(t, filepath.Join(dir, "key.pem"), nobody)
			return fmt.Sprintf(https, "key.pem")
		}, "listeners[0].key: refusing key.pem: is owned by uid 65534"},
		{"certificate and key in order", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "cert.pem"), string(cert), 0o644)
			writeFile(t, filepath.Join(dir, "key.pem"), string(key), 0o600)
			return fmt.Sprintf(https, "key.pem")
		}, ""},
		{"audit sink directory symlinked", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "elsewhere"), 0o750)
			os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "log"))
			return "audit_logs_target = \"log/audit.log\"\n"
		}, "t.toml:1:21: audit_logs_target: refusing log/audit.log: DIR/log is a symbolic link"},
		{"audit sink symlinked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "secret"), "x", 0o600)
			os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "audit.json"))
			return "audit_logs_json_target = \"audit.json\"\naudit_hmac_key_file = \"k\"\n"
		}, "t.toml:1:26: audit_logs_json_target: refusing audit.json: is a symbolic link"},
		{"audit sink owned by another user", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "audit.log"), "", 0o640)
			chown(t, filepath.Join(dir, "audit.log"), nobody)
			return "audit_logs_target = \"audit.log\"\n"
		}, "audit_logs_target: refusing audit.log: is owned by uid 65534"},
		{"audit sink directory writable by others", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "log"), 0o777)
			os.Chmod(filepath.Join(dir, "log"), 0o777)
			return "audit_logs_target = \"log/audit.log\"\n"
		}, "audit_logs_target: refusing log/audit.log: DIR/log: is writable by others (mode 0777): chmod o-w"},
		{"audit sink directory owned by another user", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "log"), 0o755)
			chown(t, filepath.Join(dir, "log"), nobody)
			return "audit_logs_target = \"log/audit.log\"\n"
		}, "audit_logs_target: refusing log/audit.log: DIR/log: is owned by uid 65534"},
		{"audit sink hard-linked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "precious"), "x", 0o600)
			os.Link(filepath.Join(dir, "precious"), filepath.Join(dir, "audit.log"))
			return "audit_logs_target = \"audit.log\"\n"
		}, "audit_logs_target: refusing audit.log: has 2 hard links"},
		{"audit sink and directory yet to be created", func(t *testing.T, dir string) string {
			return "audit_logs_target = \"log/a/audit.log\"\n"
		}, ""},
		{"audit HMAC key symlinked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "real.key"), strings.Repeat("0f", 32)+"\n", 0o600)
			os.Symlink(filepath.Join(dir, "real.key"), filepath.Join(dir, "audit.key"))
			return "audit_logs_json_target = \"audit.json\"\naudit_hmac_key_file = \"audit.key\"\n"
		}, "t.toml:2:23: audit_hmac_key_file: refusing audit.key: is a symbolic link"},
		{"audit HMAC key readable by others", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "audit.key"), strings.Repeat("0f", 32)+"\n", 0o604)
			return "audit_logs_json_target = \"audit.json\"\naudit_hmac_key_file = \"audit.key\"\n"
		}, "audit_hmac_key_file: refusing audit.key: is open to group or others (mode 0604): chmod 0600"},
		{"saved_state symlinked", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "secret"), "x", 0o600)
			os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "state.json"))
			return "saved_state = \"state.json\"\n"
		}, "t.toml:1:15: saved_state: refusing state.json: is a symbolic link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "t.toml")
			_, err := parseWithin(t, 10*time.Second, []byte(c.setup(t, dir)), cfg)
			want := strings.ReplaceAll(c.want, "DIR", dir)
			if want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error holding %q", want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(strings.TrimPrefix(line, dir+"/"), want) {
					return
				}
			}
			t.Errorf("errors:\n%v\nwant a line holding:\n%s", err, want)
		})
	}
}
