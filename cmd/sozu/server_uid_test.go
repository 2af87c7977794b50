package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestTrustedServerUIDs: root and the CLI's euid always; the socket
// directory's owner only when no one else may write in it.
func TestTrustedServerUIDs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give directories other owners")
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
		euid uint32
		want []uint32
	}{
		{"root dir, root CLI", 0o755, 0, 0, []uint32{0}},
		{"root dir, user CLI", 0o755, 0, 1000, []uint32{0, 1000}},
		{"supervisor-owned 0750 dir", 0o750, 4242, 1000, []uint32{0, 1000, 4242}},
		{"supervisor-owned 0700 dir", 0o700, 4242, 0, []uint32{0, 4242}},
		{"group-writable dir names no one", 0o770, 4242, 1000, []uint32{0, 1000}},
		{"world-writable dir names no one", 0o777, 4242, 1000, []uint32{0, 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, tc.uid, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			got := trustedServerUIDs(filepath.Join(dir, "sozu.sock"), tc.euid)
			if !slices.Equal(got, tc.want) {
				t.Errorf("trusted %v, want %v", got, tc.want)
			}
		})
	}
	if got := trustedServerUIDs("/nonexistent/dir/sozu.sock", 7); !slices.Equal(got, []uint32{0, 7}) {
		t.Errorf("missing directory: trusted %v, want [0 7]", got)
	}
}
