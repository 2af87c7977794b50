package config

import (
	"errors"
	"math"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/supervisor/safefile"
)

// Files the configuration names are opened with package safefile: no
// symbolic link anywhere in the path, and rules per kind of file (see
// docs/configuration.md, "Files the configuration names"). A refusal names
// the key, the path as written and the reason.

// maxHMACKeySize bounds audit_hmac_key_file (a key is 64 hex digits).
const maxHMACKeySize = 4096

// file resolves a file path against the configuration's directory.
func (b *builder) file(p, name string) string {
	if name == "" {
		b.errs.at(p, "must not be empty")
		return ""
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(b.dir, name)
	}
	return filepath.Clean(name)
}

// read returns the content of the file named at key path p: a regular
// file of at most max bytes, owned by root or this process's user, not
// writable by group or others, reached without symlinks.
func (b *builder) read(p, name string, max int64) (string, bool) {
	return b.readWith(p, name, max, safefile.ReadFile)
}

// readAnswer is read for an answer template, whose bytes are served to
// anonymous clients: the file must moreover have a single link
// (safefile.ReadServedFile).
func (b *builder) readAnswer(p, name string) (string, bool) {
	return b.readWith(p, name, safefile.MaxAnswerSize, safefile.ReadServedFile)
}

func (b *builder) readWith(p, name string, max int64, readFile func(string, int64) ([]byte, error)) (string, bool) {
	abs := b.file(p, name)
	if abs == "" || b.noFiles {
		return "", false
	}
	data, err := readFile(abs, max)
	if err != nil {
		b.pathError(p, name, abs, "read", err)
		return "", false
	}
	return string(data), true
}

// targetKind is a file the supervisor writes or reads later (not now):
// which rules apply to it when it exists already.
type targetKind int

const (
	sinkTarget   targetKind = iota // audit sink or log file: safefile.CheckSink
	secretTarget                   // audit HMAC key: safefile.CheckSecret
	stateTarget                    // saved_state: safefile.CheckFile, no size cap
)

// checkTarget checks the file named at key path p (abs, as resolved) that
// the supervisor will create, append to or read when it starts: no
// symlink on the way to it; if it exists, the rules of kind; if its
// directory exists, safefile.CheckDir. Nothing is created or opened for
// reading or writing. A path this process may not reach (EACCES) is left
// to the supervisor, which applies the same rules when it opens it.
func (b *builder) checkTarget(p, name, abs string, kind targetKind) {
	if abs == "" || b.noFiles {
		return
	}
	st, err := safefile.Stat(abs)
	switch {
	case errors.Is(err, unix.ENOENT):
	case errors.Is(err, unix.EACCES):
		// This process (a CLI verb run by an operator, say) may not reach
		// the path; the supervisor checks it when it opens it.
		return
	case err != nil:
		b.pathError(p, name, abs, "check", err)
		return
	default:
		switch kind {
		case sinkTarget:
			err = safefile.CheckSink(abs, st)
		case secretTarget:
			err = safefile.CheckSecret(abs, st, maxHMACKeySize)
		case stateTarget:
			err = safefile.CheckFile(abs, st, math.MaxInt64)
		}
		if err != nil {
			b.pathError(p, name, abs, "check", err)
			return
		}
	}
	dir := filepath.Dir(abs)
	st, err = safefile.Stat(dir)
	if err == nil {
		err = safefile.CheckDir(dir, st)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EACCES) {
		b.pathError(p, name, abs, "check", err)
	}
}

// logFile checks a file:// log target with an absolute path like a sink
// (a relative one is opened by `sozu start` against its working directory).
func (b *builder) logFile(p, target string) {
	if path, ok := strings.CutPrefix(target, "file://"); ok && filepath.IsAbs(path) {
		b.checkTarget(p, path, filepath.Clean(path), sinkTarget)
	}
}

// pathError reports err (from package safefile) about the file named at
// key path p: "refusing <name>: <reason>" when the rules refuse it,
// "cannot <verb> <name>: <system error>" otherwise.
func (b *builder) pathError(p, name, abs, verb string, err error) {
	var se *safefile.Error
	if !errors.As(err, &se) {
		b.errs.wrap(p, err, "cannot %s %s: %v", verb, name, err)
		return
	}
	if se.Err != nil {
		b.errs.wrap(p, err, "cannot %s %s: %v", verb, name, se.Err)
		return
	}
	reason := se.Reason
	if se.Path != abs {
		reason = se.Path + ": " + reason
	}
	b.errs.wrap(p, err, "refusing %s: %s", name, reason)
}
