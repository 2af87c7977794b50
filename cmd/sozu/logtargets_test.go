package main

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDedicatedFile: workers write the access target themselves only when
// it is a regular file that none of the supervisor's own targets names.
func TestDedicatedFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	access, main, auditLog := file("access.log"), file("main.log"), file("audit.log")
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := os.OpenFile(file("held.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, c := range []struct {
		name, access string
		others       []string
		want         string
	}{
		{"stdout appended to it", "file://" + held.Name(), nil, ""},
		{"dedicated", "file://" + access, []string{"file://" + main, "file://" + auditLog}, access},
		{"bare path", access, []string{"stdout"}, access},
		{"the main log", "file://" + access, []string{"file://" + filepath.Join(dir, ".", "access.log")}, ""},
		{"an audit sink", "file://" + auditLog, []string{"stdout", "file://" + auditLog}, ""},
		{"a FIFO", "file://" + fifo, nil, ""},
		{"a device", "file:///dev/null", nil, ""},
		{"udp", "udp://127.0.0.1:514", nil, ""},
		{"stdout", "stdout", nil, ""},
		{"missing others are no match", "file://" + access, []string{"file://" + filepath.Join(dir, "none.log"), "file://"}, access},
	} {
		if got := dedicatedFile(c.access, []*os.File{os.Stdin, held}, c.others...); got != c.want {
			t.Errorf("%s: dedicatedFile(%q, %q) = %q, want %q", c.name, c.access, c.others, got, c.want)
		}
	}
}
