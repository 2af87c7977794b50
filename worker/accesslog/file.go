package accesslog

import (
	"os"
	"sync"
)

// File is the access log file a worker writes itself, as the writer of a
// NewFileShipper. The worker never opens it: the supervisor does, and
// hands it each new descriptor when the log files reopen (logrotate), which
// Swap puts in place. Write and Swap are safe for concurrent use; a Write
// under way finishes on the descriptor it began with.
type File struct {
	mu sync.Mutex
	f  *os.File
	// Lines: the records are lines (ascii, JSON). After a write cut
	// short (a full disk), the next write starts with a newline, so
	// that the cut record spoils no other.
	Lines bool
	torn  bool
}

// NewFile returns a File writing to f, which must be open for appending.
func NewFile(f *os.File) *File { return &File{f: f} }

// Write writes p whole to the current descriptor.
func (a *File) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.torn {
		if _, err := a.f.Write([]byte{'\n'}); err != nil {
			return 0, err
		}
		a.torn = false
	}
	n, err := a.f.Write(p)
	if err != nil && n > 0 && n < len(p) && a.Lines && p[n-1] != '\n' {
		a.torn = true
	}
	return n, err
}

// Swap makes f the descriptor written from now on and closes the one it
// replaces. The last one is left to the process's exit: closing it could
// wait for a write a hung file system never finishes.
func (a *File) Swap(f *os.File) {
	a.mu.Lock()
	old := a.f
	a.f, a.torn = f, false
	a.mu.Unlock()
	old.Close()
}
