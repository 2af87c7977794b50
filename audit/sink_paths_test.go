package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is a real other user (uid 65534) owning files in the tests.
const nobody = 65534

// TestSinkPathsRefused: a sink is reached without following any symlink
// (not only in its last component), its directory must be owned by root
// or the supervisor's user and not writable by others, and an existing
// sink must be owned by them and have a single link. Nothing is created
// or written behind a refused path; the error names the sink and why.
func TestSinkPathsRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *testEnv, victim string)
		want  string
	}{
		{"directory symlinked", func(t *testing.T, e *testEnv, victim string) {
			if err := os.Symlink(victim, filepath.Join(e.dir, "log")); err != nil {
				t.Fatal(err)
			}
		}, "log: is a symbolic link"},
		{"parent of the directory symlinked", func(t *testing.T, e *testEnv, victim string) {
			if err := os.Symlink(victim, filepath.Join(e.dir, "up")); err != nil {
				t.Fatal(err)
			}
			e.text = filepath.Join(e.dir, "up", "log", "audit.log")
		}, "up is a symbolic link"},
		{"sink owned by another user", func(t *testing.T, e *testEnv, victim string) {
			os.MkdirAll(filepath.Dir(e.text), 0o750)
			os.WriteFile(e.text, nil, 0o640)
			if err := os.Chown(e.text, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, "is owned by uid 65534"},
		{"directory owned by another user", func(t *testing.T, e *testEnv, victim string) {
			os.MkdirAll(filepath.Dir(e.text), 0o750)
			if err := os.Chown(filepath.Dir(e.text), nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, "log: is owned by uid 65534"},
		{"directory writable by others", func(t *testing.T, e *testEnv, victim string) {
			os.MkdirAll(filepath.Dir(e.text), 0o750)
			os.Chmod(filepath.Dir(e.text), 0o777)
		}, "log: is writable by others (mode 0777)"},
		{"sink hard-linked to another file", func(t *testing.T, e *testEnv, victim string) {
			os.MkdirAll(filepath.Dir(e.text), 0o750)
			if err := os.Link(filepath.Join(victim, "precious"), e.text); err != nil {
				t.Fatal(err)
			}
		}, "has 2 hard links"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			victim := t.TempDir()
			if err := os.WriteFile(filepath.Join(victim, "precious"), []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c.setup(t, e, victim)
			b, err := Open(e.options())
			if err == nil {
				b.Close()
				t.Fatalf("Open accepted the sink %s", e.text)
			}
			var se *SinkError
			if !errors.As(err, &se) || se.Target != e.text || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want a SinkError for %s holding %q", err, e.text, c.want)
			}
			entries, _ := os.ReadDir(victim)
			data, _ := os.ReadFile(filepath.Join(victim, "precious"))
			if len(entries) != 1 || string(data) != "precious\n" {
				t.Errorf("behind the refused path: %d entries, precious = %q", len(entries), data)
			}
		})
	}
}
