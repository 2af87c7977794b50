package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/logframe"
)

// Workers write a dedicated file access target themselves: a record then
// costs the worker one copy into its batch and one write(2) per batch,
// where the log channel adds a copy into the channel, the supervisor's
// read, a copy into its queue, its write and its wake-ups (measured: about
// 2.5 µs of CPU per request at 25 000 requests/s, more than encoding).
//
// The worker still opens nothing: the supervisor opens the file
// (Logs.AccessFile, with the same checks as the target's own), passes it
// to each new worker as fd 7 with --access-log-file, and, when the log
// files reopen, sends the new descriptor to every such worker over its
// log channel: one byte, logframe.AccessFile, and the descriptor as
// SCM_RIGHTS. Each batch is one write(2) of whole records to a file
// opened with O_APPEND, so the workers' batches do not interleave within a
// record.
//
// Only a dedicated access_logs_target is written this way. A compromised
// worker may clear O_APPEND on its descriptor (fcntl F_SETFL is allowed
// for sockets); with no lseek, pwrite, ftruncate, fallocate nor splice
// with an offset (sandbox/policy.go) it then still writes only at the end
// of what that shared description wrote. So nothing may write the file
// through another description: not the supervisor's own targets
// (cmd/sozu dedicatedFile), not the supervisor for some workers while
// others write themselves (accessFailed, adoptAccessFile), not a second
// open of the same file (reopenAccessFile, adoptAccessFile).

// workerAccessFile returns the access log file new workers write, opening
// it on first use; nil when the access target is not a dedicated file, or
// when that first open failed (reported: every worker then sends its
// records to the supervisor, as for any other target; never some one way
// and some the other, so the file has one writer's description). Actor
// only.
func (a *actor) workerAccessFile() *os.File {
	if a.logs.AccessFile == nil || a.accessFailed {
		return nil
	}
	if a.accessFile == nil {
		f, err := a.logs.AccessFile()
		if err != nil {
			a.accessFailed = true
			a.log.Warnf("access log file for the workers: %v: their records go through the supervisor", err)
			return nil
		}
		a.accessFile = f
	}
	return a.accessFile
}

// reopenAccessFile opens the access log file again (logrotate: a new file
// under the configured name) and hands it to every worker that writes it
// itself. A worker it cannot hand the file to (its log channel full: the
// worker does not read it) keeps writing the rotated file: that is
// reported, in the log and in the error. Actor only.
func (a *actor) reopenAccessFile() error {
	if a.accessFile == nil {
		return nil
	}
	f, err := a.logs.AccessFile()
	if err != nil {
		return fmt.Errorf("access log file: %w (the workers keep writing the previous one)", err)
	}
	if sameFile(f, a.accessFile) {
		// Not rotated (another file was, or copytruncate): the
		// workers keep the one description they write through.
		f.Close()
		return nil
	}
	var errs []error
	for _, w := range a.sortedWorkers() {
		if !w.accessFile {
			continue
		}
		if err := sendAccessFile(w.logs, f); err != nil {
			a.log.WithField("worker", w.id).Warnf("handing the reopened access log file to the worker: %v: it keeps writing the previous one", err)
			errs = append(errs, fmt.Errorf("worker %d keeps writing the previous access log file: %w", w.id, err))
		}
	}
	a.accessFile.Close()
	a.accessFile = f
	return errors.Join(errs...)
}

// sendWait bounds how long the actor waits to hand a file to one worker:
// the message is a byte and a descriptor, so only a worker that stopped
// reading its log channel makes it wait at all.
const sendWait = 100 * time.Millisecond

// sendAccessFile sends f on a worker's log channel, within sendWait.
func sendAccessFile(c net.Conn, f *os.File) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("log channel is a %T, not a unix socket", c)
	}
	uc.SetWriteDeadline(time.Now().Add(sendWait))
	defer uc.SetWriteDeadline(time.Time{})
	_, _, err := uc.WriteMsgUnix([]byte{logframe.AccessFile}, unix.UnixRights(int(f.Fd())), nil)
	return err
}

// adoptAccessFile settles, after a hot upgrade, which access log file the
// workers write themselves. inherited is the predecessor's (nil when it
// had none). When it is the file this supervisor's configuration names,
// it is kept, so that one open file description still writes that file
// (a second one would let a worker that cleared O_APPEND on the first
// write over the other's records); another file is opened afresh. When an
// inherited worker sends its access records through the supervisor (its
// predecessor gave it no file), new workers do too, for the same reason.
// Actor only, once the inherited workers are in a.workers.
func (a *actor) adoptAccessFile(inherited *os.File) {
	channel := false
	for _, w := range a.workers {
		channel = channel || !w.accessFile
	}
	switch {
	case a.logs.AccessFile == nil:
		if inherited != nil {
			inherited.Close()
			a.log.Warn("inherited workers write the access log file their previous supervisor gave them, which this configuration does not name as a dedicated access_logs_target: they do until they are replaced")
		}
		return
	case channel:
		if inherited != nil {
			inherited.Close()
		}
		a.accessFailed = true
		a.log.Info("inherited workers send their access records through the supervisor: new workers will too, until a restart")
		return
	}
	if inherited == nil {
		a.workerAccessFile()
		return
	}
	own, err := a.logs.AccessFile()
	switch {
	case err != nil:
		// Keep the one description the inherited workers write
		// through: a second writer (the supervisor, for channel
		// workers) is what must not happen.
		a.log.Warnf("access log file for the workers: %v: keeping the one the previous supervisor handed over", err)
		a.accessFile = inherited
	case sameFile(own, inherited):
		own.Close()
		a.accessFile = inherited
	default:
		inherited.Close()
		a.accessFile = own
	}
}

// sameFile reports whether a and b are open on the same file.
func sameFile(a, b *os.File) bool {
	sa, err := a.Stat()
	if err != nil {
		return false
	}
	sb, err := b.Stat()
	return err == nil && os.SameFile(sa, sb)
}
