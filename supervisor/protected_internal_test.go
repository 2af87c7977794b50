package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// TestWriteStateFileProtected: writeStateFile replaces no protected file,
// under any name that reaches its inode (a symlinked directory, a hard
// link); a symbolic link to one is itself replaced, leaving the file be.
func TestWriteStateFileProtected(t *testing.T) {
	dir := t.TempDir()
	audit := filepath.Join(dir, "audit", "audit.log")
	if err := os.Mkdir(filepath.Dir(audit), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(audit, []byte("trail\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(audit, &st); err != nil {
		t.Fatal(err)
	}
	protected := []protectedFile{{what: "audit_logs_target", path: audit, id: statID(&st)}}
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	must(t, os.Symlink(filepath.Dir(audit), filepath.Join(other, "dir-link")))
	must(t, os.Link(audit, filepath.Join(other, "hard-link")))
	must(t, os.Symlink(audit, filepath.Join(other, "sym-link")))
	must(t, os.Mkdir(filepath.Join(other, "a-dir"), 0o755))

	reqs := []*command.WorkerRequest{{Id: proto.String("SAVE-0"), Content: &command.Request{RequestType: &command.Request_AddCluster{
		AddCluster: &command.Cluster{ClusterId: proto.String("c")}}}}}
	tests := []struct {
		name, path, err string // err: "" for success
	}{
		{"the path itself", audit, "refusing to write the state to " + audit + ": it is " + audit + " (audit_logs_target)"},
		{"through a symlinked directory", filepath.Join(other, "dir-link", "audit.log"), "is another name of " + audit + " (audit_logs_target)"},
		{"a hard link", filepath.Join(other, "hard-link"), "is another name of " + audit},
		{"a symbolic link: replaced itself", filepath.Join(other, "sym-link"), ""},
		{"a directory", filepath.Join(other, "a-dir"), "it is a directory"},
		{"a missing directory", filepath.Join(other, "nope", "s.state"), "open directory " + filepath.Join(other, "nope")},
		{"a new file", filepath.Join(other, "s.state"), ""},
	}
	for _, tt := range tests {
		err := checkProtectedPath(tt.path, protected)
		if err == nil {
			err = writeStateFile(tt.path, reqs, protected)
		}
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.err)
		case tt.err == "":
			fi, err := os.Lstat(tt.path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v %v, want a regular file of mode 0600", tt.name, err, fi)
			}
		}
	}
	if b, err := os.ReadFile(audit); err != nil || string(b) != "trail\n" {
		t.Errorf("the protected file now holds %q (%v)", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
