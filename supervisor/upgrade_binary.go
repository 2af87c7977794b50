package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// openUpgradeBinary opens the binary a hot upgrade executes: the file at
// path now (a binary replaced on disk since the start is the new one), and
// refuses it unless nobody but root or the supervisor's own user could
// have put it there: it must be a regular file (a symbolic link is
// refused), owned by root or euid, writable by neither its group nor
// others, and every directory from its own up to / must be owned by root
// or euid and writable by neither group nor others, except that a
// directory above the binary's own may be so when it is sticky (as /tmp
// is). Otherwise a user who could write the file or rename another into
// its place would have it executed by the supervisor, as root. It returns
// the open file (close-on-exec; the new supervisor is executed through it,
// so the file checked is the file run) and the SHA-256 of its content.
func openUpgradeBinary(path string, euid int) (*os.File, string, error) {
	if !filepath.IsAbs(path) {
		return nil, "", fmt.Errorf("upgrade binary %s: not an absolute path", path)
	}
	for d, own := filepath.Dir(path), true; ; d, own = filepath.Dir(d), false {
		if err := checkBinaryDir(d, own, euid); err != nil {
			return nil, "", fmt.Errorf("upgrade binary %s: %w", path, err)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, "", fmt.Errorf("upgrade binary %s is a symbolic link: refusing it", path)
		}
		return nil, "", fmt.Errorf("upgrade binary %s: %w", path, unwrapPathErr(err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(rawFD(f), &st); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("upgrade binary %s: fstat: %w", path, err)
	}
	mode := st.Mode
	switch {
	case mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("is not a regular file")
	case st.Uid != 0 && int(st.Uid) != euid:
		err = fmt.Errorf("is owned by uid %d, neither root nor the supervisor's uid %d", st.Uid, euid)
	case mode&0o022 != 0:
		err = fmt.Errorf("has mode %04o: writable by its group or others", mode&0o7777)
	case mode&0o111 == 0:
		err = fmt.Errorf("has mode %04o: not executable", mode&0o7777)
	}
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("upgrade binary %s %w: refusing to execute it", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("upgrade binary %s: reading it: %w", path, unwrapPathErr(err))
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}

// checkBinaryDir checks one directory above the upgrade binary; own is the
// binary's own directory.
func checkBinaryDir(d string, own bool, euid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return fmt.Errorf("directory %s: %w", d, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("directory %s is a symbolic link: name the real directory", d)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", d)
	}
	perm := st.Mode & 0o7777
	switch {
	case st.Uid != 0 && int(st.Uid) != euid:
		return fmt.Errorf("directory %s (mode %04o) is owned by uid %d, neither root nor the supervisor's uid %d: its owner could replace the binary; refusing to execute it",
			d, perm, st.Uid, euid)
	case perm&0o022 != 0 && (own || perm&unix.S_ISVTX == 0):
		return fmt.Errorf("directory %s (mode %04o, owner uid %d) is writable by its group or others, who could replace the binary; refusing to execute it",
			d, perm, st.Uid)
	}
	return nil
}
