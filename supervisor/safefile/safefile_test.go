package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is a real other user (uid 65534) owning files in the tests.
const nobody = 65534

// resolvers runs f with openat2 and with the O_NOFOLLOW component walk.
func resolvers(t *testing.T, f func(t *testing.T)) {
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			noOpenat2.Store(walk)
			t.Cleanup(func() { noOpenat2.Store(false) })
			f(t)
		})
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestReadFile: what ReadFile refuses, with the reason it gives, and that
// refusing a FIFO or a device does not block.
func TestReadFile(t *testing.T) {
	resolvers(t, func(t *testing.T) {
		dir := t.TempDir()
		secret := filepath.Join(dir, "secret")
		write(t, secret, "root only\n", 0o600)
		good := filepath.Join(dir, "good")
		write(t, good, "hello\n", 0o644)
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		write(t, filepath.Join(dir, "sub", "f"), "in sub\n", 0o644)

		link := filepath.Join(dir, "link")
		os.Symlink(secret, link)
		dangling := filepath.Join(dir, "dangling")
		os.Symlink(filepath.Join(dir, "none"), dangling)
		os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "sublink"))
		fifo := filepath.Join(dir, "fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		gw := filepath.Join(dir, "gw")
		write(t, gw, "x", 0o664)
		ww := filepath.Join(dir, "ww")
		write(t, ww, "x", 0o646)
		other := filepath.Join(dir, "other")
		write(t, other, "x", 0o644)
		if err := os.Chown(other, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		big := filepath.Join(dir, "big")
		write(t, big, strings.Repeat("x", 101), 0o644)

		cases := []struct {
			path, want string
			refused    bool
		}{
			{good, "", false},
			{filepath.Join(dir, "sub", "f"), "", false},
			{link, link + ": is a symbolic link", true},
			{dangling, dangling + ": is a symbolic link", true},
			{filepath.Join(dir, "sublink", "f"), filepath.Join(dir, "sublink") + " is a symbolic link", true},
			{fifo, "is a FIFO, not a regular file", true},
			{"/dev/zero", "is a character device, not a regular file", true},
			{dir, "is a directory, not a regular file", true},
			{gw, "is writable by group or others (mode 0664)", true},
			{ww, "is writable by group or others (mode 0646)", true},
			{other, "is owned by uid 65534", true},
			{big, "is 101 bytes long: the limit is 100 bytes", true},
			{filepath.Join(dir, "none"), "no such file", false},
			{"relative/path", "is not an absolute path", true},
			{dir + "/../x", "is not a clean path", true},
		}
		for _, c := range cases {
			done := make(chan struct{})
			var data []byte
			var err error
			go func() {
				defer close(done)
				data, err = ReadFile(c.path, 100)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: ReadFile blocked", c.path)
			}
			if c.want == "" {
				if err != nil {
					t.Errorf("%s: %v", c.path, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || data != nil {
				t.Errorf("%s: got %q, %v; want an error containing %q", c.path, data, err, c.want)
				continue
			}
			if errors.Is(err, ErrRefused) != c.refused {
				t.Errorf("%s: errors.Is(ErrRefused) = %v, want %v", c.path, !c.refused, c.refused)
			}
		}
	})
}

// TestMkdirAll: creates with the mode whatever the umask, refuses a
// symlinked component (and creates nothing behind it), a directory
// writable by others or owned by another user; accepts group write.
func TestMkdirAll(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dir := t.TempDir()
	target := filepath.Join(dir, "a", "b")
	d, created, err := MkdirAll(target, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if len(created) != 2 || created[0] != filepath.Join(dir, "a") || created[1] != target {
		t.Errorf("created %q", created)
	}
	for _, p := range created {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v", p, fi.Mode(), err)
		}
	}

	victim := t.TempDir()
	os.Symlink(victim, filepath.Join(dir, "link"))
	if _, _, err := MkdirAll(filepath.Join(dir, "link", "c"), 0o750); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "link")+" is a symbolic link") {
		t.Errorf("through a symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(victim, "c")); err == nil {
		t.Errorf("created a directory behind the symlink")
	}

	ow := filepath.Join(dir, "ow")
	os.Mkdir(ow, 0o777)
	os.Chmod(ow, 0o777)
	if _, _, err := MkdirAll(ow, 0o750); err == nil || !strings.Contains(err.Error(), "is writable by others (mode 0777)") {
		t.Errorf("world-writable: %v", err)
	}
	gw := filepath.Join(dir, "gw")
	os.Mkdir(gw, 0o775)
	os.Chmod(gw, 0o775)
	if d, _, err := MkdirAll(gw, 0o750); err != nil {
		t.Errorf("group-writable: %v", err)
	} else {
		d.Close()
	}
	theirs := filepath.Join(dir, "theirs")
	os.Mkdir(theirs, 0o755)
	if err := os.Chown(theirs, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(theirs); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534") {
		t.Errorf("OpenDir of another user's directory: %v", err)
	}
	// Below it, a directory we create is ours: accepted (only the last
	// directory is checked; see the package comment).
	if d, _, err := MkdirAll(filepath.Join(theirs, "x"), 0o750); err != nil {
		t.Errorf("below another user's directory: %v", err)
	} else {
		d.Close()
	}
}
