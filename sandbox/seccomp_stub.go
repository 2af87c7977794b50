//go:build !linux || !cgo

package sandbox

import "fmt"

// Supported reports whether this build can load a filter (cgo on Linux).
const Supported = false

// Load refuses to start a sandbox this build cannot load: it returns an
// error for ModeKill and ModeErrno, so that a worker built without cgo
// exits instead of serving unconfined. ModeOff returns nil.
func Load(mode Mode) error {
	switch mode {
	case ModeOff:
		return nil
	case ModeKill, ModeErrno:
		return fmt.Errorf("sandbox: cannot load the seccomp filter (%s mode): this binary was built without cgo (libseccomp); rebuild with CGO_ENABLED=1 or set sandbox_mode = \"off\"", mode)
	}
	return fmt.Errorf("sandbox: invalid mode %q: want kill, errno or off", string(mode))
}

// prepareLibc has nothing to do without cgo: no libc malloc.
func prepareLibc() error { return nil }
