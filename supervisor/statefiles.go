package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
	"github.com/sozu-go/sozu/supervisor/asuser"
)

// Bounds of load_state (docs/protocol.md). A state file larger than
// maxStateFileSize, or that takes longer than stateFileReadTimeout to read
// and parse, is refused before any of its records is applied. The records
// are then applied by actor jobs of at most loadSliceBudget each, so that
// other clients are served in between, and at most two windows of
// loadWindow records are sent to the workers before they have answered.
const (
	maxStateFileSize     = 64 << 20
	stateFileReadTimeout = 60 * time.Second
	loadSliceBudget      = 20 * time.Millisecond
	loadWindow           = 1024
)

// peerFS is whose filesystem rights a state file named by client c is
// read or written with (package asuser): the client's own, so that being
// admitted to the socket grants no access to files the client could not
// open itself. A peer whose credentials are unknown gets nobody's.
func peerFS(c *session) asuser.Identity {
	if !c.ident.Known {
		return asuser.Identity{UID: 65534, GID: 65534}
	}
	return asuser.Identity{UID: c.ident.UID, GID: c.ident.GID, Groups: c.ident.Groups}
}

// saveState answers save_state: the current state, in upstream's record
// format and order, written atomically to path (relative to the
// supervisor's working directory) with the client's filesystem rights.
// It never writes over, nor renames onto, a file the supervisor itself
// uses (protectedFiles), whatever its name.
func (s *Supervisor) saveState(c *session, path string) bool {
	abs, err := filepath.Abs(path) // cleaned
	if err != nil {
		return c.fail(fmt.Sprintf("Cannot get Sōzu working directory: %v", err))
	}
	protected := s.protectedFiles()
	var reqs []*command.WorkerRequest
	s.do(func(a *actor) { reqs = a.state.GenerateRequests() })
	note := ""
	if !s.keyCustodian(c) { // statekeys.go
		if n := omitKeys(reqs); n > 0 {
			note = keysOmittedNote(c, n)
			if c.trace != nil {
				c.trace.note = fmt.Sprintf("private keys omitted from %d records", n)
			}
		}
	}
	err = asuser.Do(peerFS(c), func() error {
		if err := checkProtectedPath(abs, protected); err != nil {
			return err
		}
		return writeStateFile(abs, reqs, protected)
	})
	if err != nil {
		return c.fail(err.Error())
	}
	return c.ok(fmt.Sprintf("Saved %d config messages to %s", len(reqs), abs)+note, nil)
}

// writeStateFile writes reqs to path (absolute, clean) atomically: a
// temporary file in the same directory, fsync, rename, then fsync of the
// directory; mode 0600, as it holds the private keys of the certificates.
// The directory is opened once and every later step is relative to it, so
// that the file the rename replaces is the one checked against protected
// (by device and inode, under any name).
func writeStateFile(path string, reqs []*command.WorkerRequest, protected []protectedFile) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if path == dir {
		return fmt.Errorf("Cannot create file at path %s: it names a directory", path)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("Cannot create file at path %s: open directory %s: %w", path, dir, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	switch err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		if err := checkProtectedID(path, statID(&st), protected); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("Cannot create file at path %s: it is a directory", path)
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("Cannot create file at path %s: %w", path, err)
	}

	var tmpName string
	var fd int
	for range 10 {
		tmpName = fmt.Sprintf(".%s.tmp-%08x", base, rand.Uint32())
		fd, err = unix.Openat(dfd, tmpName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("Cannot create file at path %s: create %s: %w", path, filepath.Join(dir, tmpName), err)
	}
	tmp := os.NewFile(uintptr(fd), filepath.Join(dir, tmpName))
	renamed := false
	defer func() {
		if !renamed {
			unix.Unlinkat(dfd, tmpName, 0)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil { // whatever the umask
		tmp.Close()
		return fmt.Errorf("Cannot create file at path %s: %v", path, err)
	}
	bw := bufio.NewWriter(tmp)
	enc := statefile.NewEncoder(bw)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			tmp.Close()
			return fmt.Errorf("Failed writing state to file: %v", err)
		}
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := unix.Renameat(dfd, tmpName, dfd, base); err != nil {
		return fmt.Errorf("Failed writing state to file %s: rename: %v", path, err)
	}
	renamed = true
	unix.Fsync(dfd)
	return nil
}

// loadState answers load_state. The file is opened with the client's
// filesystem rights, and read and parsed outside the state actor, within
// maxStateFileSize and stateFileReadTimeout. Its records are then applied
// in file order, loadBatchSize per actor job, each batch fanned out to the
// workers; before the next batch is applied the workers must have answered
// the previous one, so that a worker's queue never holds more than two
// batches of the load (it holds workerQueueLen) and other clients' verbs
// wait at most for a batch. Other verbs may therefore interleave between
// batches.
//
// A record the state refuses (a duplicate, say) is skipped, as upstream
// does; a malformed record stops the load with a FAILURE naming it, and
// the records before it are applied.
func (s *Supervisor) loadState(c *session, path string) bool {
	c.processing(fmt.Sprintf("Parsing state file from %s...", path))
	var f *os.File
	err := asuser.Do(peerFS(c), func() (err error) {
		f, err = openStateFile(path)
		return err
	})
	if err != nil {
		return c.fail(err.Error())
	}
	recs, err := readStateFile(f, path, stateFileReadTimeout)
	if err != nil && len(recs) == 0 {
		return c.fail(err.Error())
	}
	c.processing("Applying state file...")
	var applied, skipped int
	var outs []outcome
	// prev: the calls of the last full window, answered before the next
	// window starts; cur: the window being filled.
	var prev, cur []*call
	next, inWindow := 0, 0
	stopped := false
	la := &loadAudit{c: c, total: len(recs)}
	if c.trace != nil {
		la.id = c.trace.id
	}
	for next < len(recs) && !stopped && la.err == nil {
		var calls []*call
		s.do(func(a *actor) {
			if a.stopping {
				stopped = true
				return
			}
			end := min(next+loadWindow-inWindow, len(recs))
			la.base = next
			n, ap, sk := a.applyRecords(recs[next:end], path, &calls, time.Now().Add(loadSliceBudget), la)
			next, inWindow = next+n, inWindow+n
			applied, skipped = applied+ap, skipped+sk
		})
		cur = append(cur, calls...)
		if inWindow == loadWindow {
			outs = append(outs, s.gather(c, prev, s.cfg.WorkerTimeout)...)
			prev, cur, inWindow = cur, nil, 0
		}
	}
	outs = append(outs, s.gather(c, append(prev, cur...), s.cfg.WorkerTimeout)...)
	c.trace.noteOutcomes(outs)
	if applied > 0 {
		s.do((*actor).autoSave)
	}
	workerErrs := 0
	for _, o := range outs {
		if !o.ok() {
			workerErrs++
		}
	}
	switch {
	case la.err != nil:
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors: audit trail unavailable, record %d not applied: %s (the load stopped there)", applied, skipped+workerErrs, next+1, auditReason(la.err)))
	case stopped:
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors: %v (the load stopped there)", applied, skipped+workerErrs, errStopping))
	case err != nil:
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors: %v (the %d records before it were applied)", applied, skipped+workerErrs+1, err, applied+skipped))
	case workerErrs > 0:
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors", applied, skipped+workerErrs))
	}
	return c.ok(fmt.Sprintf("Successfully loaded state from path %s, %d ok messages, %d errors", path, applied, skipped), nil)
}

// openStateFile opens a state file for reading, with upstream's messages.
// It opens without blocking (O_NONBLOCK: a FIFO without a writer would
// block the open) and refuses anything but a regular file, checked on the
// opened descriptor (a FIFO with a writer that never writes would block
// the reads), and a file larger than maxStateFileSize.
func openStateFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("Cannot find file at path %s", path)
		}
		return nil, fmt.Errorf("Cannot open file at path %s: %v", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("Cannot open file at path %s: fstat: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("Cannot load state: %s is not a regular file (it is %s); load_state reads regular files only", path, fileKind(st.Mode))
	}
	if st.Size > maxStateFileSize {
		unix.Close(fd)
		return nil, fmt.Errorf("Cannot load state: %s is %d bytes, more than the %d MiB load_state reads", path, st.Size, maxStateFileSize>>20)
	}
	// Reads of a regular file ignore O_NONBLOCK; clear it all the same.
	unix.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), path), nil
}

// fileKind names the type of a file mode, for messages.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("of type %#o", mode&unix.S_IFMT)
}

// errStateTooLarge is returned when a state file grew past the bound
// after it was opened.
var errStateTooLarge = fmt.Errorf("the file is larger than the %d MiB load_state reads", maxStateFileSize>>20)

// boundedReader reads at most maxStateFileSize bytes, then fails with
// errStateTooLarge.
type boundedReader struct {
	r    io.Reader
	left int64 // bytes allowed beyond maxStateFileSize: starts at max+1
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errStateTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// readStateFile reads and parses every record of f (named path), and
// closes f. It gives up after timeout (a read that blocks, on a network
// or FUSE file system, keeps its goroutine until it returns; the records
// are dropped). On a malformed record it returns the records before it
// with the error; on any other error, none. It never runs in the actor.
func readStateFile(f *os.File, path string, timeout time.Duration) ([]*command.WorkerRequest, error) {
	type result struct {
		recs []*command.WorkerRequest
		err  error
	}
	done := make(chan result, 1)
	var cancelled atomic.Bool
	go func() {
		defer f.Close()
		var recs []*command.WorkerRequest
		dec := statefile.NewDecoder(&boundedReader{r: f, left: maxStateFileSize + 1})
		for !cancelled.Load() {
			wr, err := dec.Next()
			if errors.Is(err, io.EOF) {
				done <- result{recs, nil}
				return
			}
			if err != nil {
				var re *statefile.RecordError
				if !errors.As(err, &re) {
					recs = nil // a read error, or too large: nothing is applied
				}
				done <- result{recs, fmt.Errorf("state file %s: %w", path, err)}
				return
			}
			recs = append(recs, wr)
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.recs, r.err
	case <-t.C:
		cancelled.Store(true)
		return nil, fmt.Errorf("Cannot load state from %s: reading and parsing it took longer than %v", path, timeout)
	}
}

// loadStateFile applies the records of the state file at path (opened with
// the supervisor's own rights), at start: no worker runs yet. Actor only.
func (a *actor) loadStateFile(path string) (applied, skipped int, err error) {
	f, err := openStateFile(path)
	if err != nil {
		return 0, 0, err
	}
	recs, err := readStateFile(f, path, stateFileReadTimeout)
	_, applied, skipped = a.applyRecords(recs, path, nil, time.Time{}, nil)
	if applied > 0 {
		a.autoSave()
	}
	return applied, skipped, err
}

// loadAudit is what applyRecords needs to record each record of a
// client's load_state as the request it is: an attempt record before the
// state takes it (fail closed: none written, the load stops there) and a
// completion record saying whether the state took it, both naming the
// load and the record's place in it. Without them a load would change
// clusters, certificates and listeners with one record naming a file,
// which may be gone by the time anyone reads the trail.
type loadAudit struct {
	c     *session
	id    string // the load_state request's ULID
	base  int    // index in the file of the first record passed
	total int
	err   error // the audit trail refused a record: the load stopped
}

// reason is the reason of the records of the i-th record passed.
func (la *loadAudit) reason(i int, wr *command.WorkerRequest) string {
	return fmt.Sprintf("state load %s record %d/%d (%s)", la.id, la.base+i+1, la.total, wr.GetId())
}

// applyRecords applies recs to the state, in order, until they are all
// applied or the deadline passes (zero: none); it applies one record at
// least. Calls made to workers are appended to calls when it is not nil.
// With la (a client's load_state), each record is audited (loadAudit);
// when its attempt record cannot be written, la.err is set and nothing
// more is applied.
// It returns how many records it took, how many of them were applied and
// how many the state refused. It does not save the state
// (automatic_state_save): the caller does, once. Actor only.
func (a *actor) applyRecords(recs []*command.WorkerRequest, path string, calls *[]*call, deadline time.Time, la *loadAudit) (n, applied, skipped int) {
	a.loadingState = true
	defer func() { a.loadingState = false }()
	for i, wr := range recs {
		if n > 0 && !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		var ulid string
		if la != nil && a.audit != nil {
			ulid = a.ids.New()
			if err := a.record(a.stepRecord(la.c, audit.CodeCommandAttempt, wr.GetContent(), ulid, la.reason(i, wr))); err != nil {
				la.err = err
				break
			}
		}
		n++
		cs, err := a.apply(wr.GetContent())
		if ulid != "" {
			rec := a.stepRecord(la.c, audit.CodeCommandCompleted, wr.GetContent(), ulid, la.reason(i, wr))
			if err != nil {
				rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, "verb_failed", rec.Reason+": skipped: "+err.Error()
			}
			if rerr := a.record(rec); rerr != nil {
				a.log.WithFields(la.c.ident.Fields()).Errorf("completion record of %s lost: %v", la.reason(i, wr), rerr)
			}
		}
		if err != nil {
			skipped++
			if errors.Is(err, errNoPrivateKey) { // statekeys.go
				a.log.WithField("path", path).Warnf("state file record %s skipped: %v", wr.GetId(), err)
				continue
			}
			a.log.WithField("path", path).Debugf("state file record %s (%s) skipped: %v", wr.GetId(), command.VerbName(wr.GetContent()), err)
			continue
		}
		applied++
		if calls != nil {
			*calls = append(*calls, cs...)
		}
	}
	return n, applied, skipped
}
