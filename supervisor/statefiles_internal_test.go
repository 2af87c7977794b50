package supervisor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenStateFile: load_state opens regular files only, without blocking,
// and no larger than maxStateFileSize; the errors name the path.
func TestOpenStateFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	must(t, err)
	must(t, f.Truncate(maxStateFileSize+1)) // sparse
	f.Close()
	atLimit := filepath.Join(dir, "at-limit")
	f, err = os.Create(atLimit)
	must(t, err)
	must(t, f.Truncate(maxStateFileSize))
	f.Close()
	small := filepath.Join(dir, "small")
	must(t, os.WriteFile(small, nil, 0o600))

	tests := []struct {
		name, path, err string // err: "" for success
	}{
		{"a FIFO without writer", fifo, "Cannot load state: " + fifo + " is not a regular file (it is a FIFO)"},
		{"a directory", dir, dir + " is not a regular file (it is a directory)"},
		{"a character device", "/dev/null", "/dev/null is not a regular file (it is a character device)"},
		{"missing", filepath.Join(dir, "missing"), "Cannot find file at path " + filepath.Join(dir, "missing")},
		{"larger than the bound", big, big + " is 67108865 bytes, more than the 64 MiB"},
		{"at the bound", atLimit, ""},
		{"empty", small, ""},
	}
	for _, tt := range tests {
		f, err := openStateFile(tt.path)
		if f != nil {
			f.Close()
		}
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.err)
		}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestBoundedReader: a state file that grows past maxStateFileSize after
// it was opened fails the read with errStateTooLarge; one at the bound
// reads whole.
func TestBoundedReader(t *testing.T) {
	for _, tt := range []struct {
		size     int64
		tooLarge bool
	}{{maxStateFileSize, false}, {maxStateFileSize + 1, true}, {maxStateFileSize + 4096, true}} {
		n, err := io.Copy(io.Discard, &boundedReader{r: io.LimitReader(zeros{}, tt.size), left: maxStateFileSize + 1})
		if tt.tooLarge != errors.Is(err, errStateTooLarge) || (!tt.tooLarge && (err != nil || n != tt.size)) {
			t.Errorf("%d bytes: read %d, %v", tt.size, n, err)
		}
	}
}
