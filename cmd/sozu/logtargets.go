package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/supervisor"
	"github.com/sozu-go/sozu/supervisor/config"
	"github.com/sozu-go/sozu/supervisor/logtarget"
)

// logTargets are the supervisor's open log targets: the main log
// (log_target: the supervisor's lines and its workers') and the access
// log (access_logs_target; the main target when unset).
type logTargets struct {
	main, access *logtarget.Target // access == main when no access_logs_target
	// accessPath is the access_logs_target file the workers write
	// themselves (supervisor/accessfile.go); "" when the access records
	// go through the supervisor: their target is not a regular file, or
	// is a file the supervisor writes too (a worker that cleared O_APPEND
	// on its descriptor could then overwrite the supervisor's lines).
	accessPath string
}

// openLogTargets opens log_target and access_logs_target and makes the
// main one log's output. Files are opened as audit sinks are (no symbolic
// link anywhere, trusted owner, one link): whoever may write their
// directory must not make root append to another file. notes say what
// opening created or tightened.
func openLogTargets(cfg *config.Config, log *logrus.Logger) (*logTargets, []string, error) {
	var notes []string
	openFile := func(key string) func(string) (*os.File, error) {
		return func(path string) (*os.File, error) {
			f, ns, err := audit.OpenAppendFile(path)
			for _, n := range ns {
				notes = append(notes, key+": "+n)
			}
			return f, err
		}
	}
	// The main target's own drops are reported on stderr: it cannot
	// carry its own warning.
	mainReport := func(msg string) { fmt.Fprintf(os.Stderr, "sozu: %s\n", msg) }
	main, err := logtarget.Open(cfg.LogTarget, logtarget.Options{OpenFile: openFile("log_target"), Report: mainReport})
	if err != nil {
		return nil, nil, fmt.Errorf("log_target: %w", err)
	}
	log.SetOutput(main)
	lt := &logTargets{main: main, access: main}
	if cfg.AccessLogsTarget != "" {
		report := func(msg string) { log.Warn(msg) }
		access, err := logtarget.Open(cfg.AccessLogsTarget, logtarget.Options{OpenFile: openFile("access_logs_target"), Report: report})
		if err != nil {
			main.Close()
			return nil, nil, fmt.Errorf("access_logs_target: %w", err)
		}
		lt.access = access
		// Once opened (created): what it is can be told.
		lt.accessPath = dedicatedFile(cfg.AccessLogsTarget, []*os.File{os.Stdout, os.Stderr},
			"file://"+cfg.AuditLogsTarget, "file://"+cfg.AuditLogsJSONTarget, cfg.LogTarget)
	}
	return lt, notes, nil
}

// dedicatedFile returns the path of the access target when it is a
// regular file (already opened) that none of the supervisor's own targets
// names (the main log, the audit sinks) nor its open files hold (stdout
// and stderr, which systemd may append to a file), "" otherwise. A FIFO
// or a device is left to the supervisor: several workers' batches would
// interleave in a FIFO, and a stalled reader would hold a worker's writer.
func dedicatedFile(access string, open []*os.File, supervisors ...string) string {
	ap, ok := logtarget.FilePath(access)
	if !ok {
		return ""
	}
	a, err := os.Lstat(ap)
	if err != nil || !a.Mode().IsRegular() {
		return ""
	}
	for _, f := range open {
		if s, err := f.Stat(); err == nil && os.SameFile(a, s) {
			return ""
		}
	}
	for _, t := range supervisors {
		p, ok := logtarget.FilePath(t)
		if !ok {
			continue
		}
		s, err := os.Stat(p)
		switch {
		case err == nil && os.SameFile(a, s):
			return ""
		case err != nil && !os.IsNotExist(err):
			return "" // cannot tell: the supervisor writes it
		}
	}
	return ap
}

// supervisorLogs is what the supervisor writes its workers' logs to.
func (lt *logTargets) supervisorLogs(cfg *config.Config) supervisor.Logs {
	onStdout := strings.TrimSpace(cfg.AccessLogsTarget) == "stdout" ||
		cfg.AccessLogsTarget == "" && strings.TrimSpace(cfg.LogTarget) == "stdout"
	l := supervisor.Logs{Main: lt.main, Access: lt.access, Reopen: lt.reopen, Dropped: lt.dropped,
		AccessColored: cfg.AccessLogsColored && onStdout && cfg.AccessLogsEncoding == "ascii",
		MainColored:   mainColored(cfg)}
	if lt.accessPath != "" {
		l.AccessFile = lt.openAccessFile
	}
	return l
}

// mainColored reports whether the main log is coloured: log_colored, on
// stdout only (upstream's rule; config reports the key elsewhere). The
// colours are written whether stdout is a terminal or not: the operator
// asked for them (journald and docker keep them).
func mainColored(cfg *config.Config) bool {
	return cfg.LogColored && strings.TrimSpace(cfg.LogTarget) == "stdout"
}

// openAccessFile opens the access records' file once more for the
// workers, with the checks of the target's own (audit.OpenAppendFile).
// What opening would create or tighten was said when the target opened.
func (lt *logTargets) openAccessFile() (*os.File, error) {
	f, _, err := audit.OpenAppendFile(lt.accessPath)
	if err != nil {
		return nil, fmt.Errorf("access log file %s: %w", lt.accessPath, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("access log file %s: not a regular file", lt.accessPath)
	}
	return f, nil
}

// dropped returns the records both targets dropped so far.
func (lt *logTargets) dropped() uint64 {
	n := lt.main.Dropped()
	if lt.access != lt.main {
		n += lt.access.Dropped()
	}
	return n
}

// reopen reopens the file targets (SIGHUP, audit reopen).
func (lt *logTargets) reopen() error {
	if err := lt.main.Reopen(); err != nil {
		return err
	}
	if lt.access != lt.main {
		return lt.access.Reopen()
	}
	return nil
}

// close writes what the targets hold, then closes them.
func (lt *logTargets) close() {
	if lt.access != lt.main {
		lt.access.Close()
	}
	lt.main.Close()
}
