package supervisor

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
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
// log channel: one byte, accessFileMsg, and the descriptor as
// SCM_RIGHTS. Each batch is one write(2) of whole records to a file
// opened with O_APPEND, so the workers' batches do not interleave within a
// record.
//
// Only a dedicated access_logs_target is written this way. A compromised
// worker may clear O_APPEND on its descriptor (fcntl F_SETFL is allowed
// for sockets); with no lseek, pwrite, ftruncate or fallocate it then
// still writes only at the end of what that shared description wrote. So
// no process but the workers may write through another description: not
// the supervisor's main log (cmd/sozu dedicatedFile), not the supervisor
// for some workers while others write themselves (accessFailed).

// accessFileMsg is the byte that carries a new access file descriptor on
// a log channel (worker/logs.go reads it).
const accessFileMsg = 'A'

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
// itself. A worker whose channel fails is reported; it keeps the old
// descriptor. Actor only.
func (a *actor) reopenAccessFile() error {
	if a.accessFile == nil {
		return nil
	}
	f, err := a.logs.AccessFile()
	if err != nil {
		return fmt.Errorf("access log file: %w", err)
	}
	for _, w := range a.sortedWorkers() {
		if !w.accessFile {
			continue
		}
		if err := sendAccessFile(w.logs, f); err != nil {
			a.log.WithField("worker", w.id).Warnf("handing the reopened access log file to the worker: %v", err)
		}
	}
	if a.accessFile != nil {
		a.accessFile.Close()
	}
	a.accessFile = f
	return nil
}

// sendAccessFile sends f on a worker's log channel.
func sendAccessFile(c net.Conn, f *os.File) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("log channel is a %T, not a unix socket", c)
	}
	_, _, err := uc.WriteMsgUnix([]byte{accessFileMsg}, unix.UnixRights(int(f.Fd())), nil)
	return err
}
