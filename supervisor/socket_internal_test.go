package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckSocketDir: which socket directories may hold the command
// socket. Real directories, real owners; run as root to chown.
func TestCheckSocketDir(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give directories other owners")
	}
	const other = 65534
	type dirSpec struct {
		mode os.FileMode
		uid  int
	}
	cases := []struct {
		name   string
		parent dirSpec // base/p
		own    dirSpec // base/p/run: the socket's directory
		link   bool    // the socket path goes through a symlink to base/p/run
		want   string  // "" = accepted; else a piece of the error
	}{
		{"0755 root", dirSpec{0o755, 0}, dirSpec{0o755, 0}, false, ""},
		{"0700 root", dirSpec{0o755, 0}, dirSpec{0o700, 0}, false, ""},
		{"0750 root", dirSpec{0o755, 0}, dirSpec{0o750, 0}, false, ""},
		{"0770 group-writable", dirSpec{0o755, 0}, dirSpec{0o770, 0}, false, "mode 0770, owner uid 0, group gid 0), is writable by its group"},
		{"0775 group-writable", dirSpec{0o755, 0}, dirSpec{0o775, 0}, false, "writable by its group"},
		{"0777 world-writable", dirSpec{0o755, 0}, dirSpec{0o777, 0}, false, "world-writable"},
		{"1777 sticky is refused too", dirSpec{0o755, 0}, dirSpec{0o1777, 0}, false, "mode 1777"},
		{"1770 sticky group", dirSpec{0o755, 0}, dirSpec{0o1770, 0}, false, "writable by its group"},
		{"owned by another uid", dirSpec{0o755, 0}, dirSpec{0o755, other}, false, "owner uid 65534, group gid 0), is owned by neither root nor the supervisor's uid 0"},
		{"parent owned by another uid", dirSpec{0o755, other}, dirSpec{0o755, 0}, false, "a directory above the command socket"},
		{"parent world-writable", dirSpec{0o777, 0}, dirSpec{0o755, 0}, false, "a directory above the command socket"},
		{"parent sticky world-writable (as /tmp)", dirSpec{0o1777, 0}, dirSpec{0o755, 0}, false, ""},
		{"through a symlink to a group-writable dir", dirSpec{0o755, 0}, dirSpec{0o770, 0}, true, "writable by its group"},
		{"through a symlink to a good dir", dirSpec{0o755, 0}, dirSpec{0o755, 0}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			parent := filepath.Join(base, "p")
			own := filepath.Join(parent, "run")
			for _, d := range []struct {
				path string
				spec dirSpec
			}{{parent, tc.parent}, {own, tc.own}} {
				if err := os.Mkdir(d.path, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d.path, d.spec.uid, 0); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Chmod(d.path, uint32(d.spec.mode)); err != nil { // 0o1000 is sticky here
					t.Fatal(err)
				}
			}
			dir := own
			if tc.link {
				dir = filepath.Join(base, "link")
				if err := os.Symlink(own, dir); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckSocketDir(dir, 0)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	t.Run("the supervisor's own uid may own it", func(t *testing.T) {
		base := t.TempDir()
		if err := os.Chown(base, other, 0); err != nil {
			t.Fatal(err)
		}
		if err := CheckSocketDir(base, other); err != nil {
			t.Errorf("refused for euid %d: %v", other, err)
		}
	})
}
