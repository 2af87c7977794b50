package supervisor

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/audit"
)

// protectedFile is a file the supervisor itself uses, which save_state
// never writes over nor renames onto, whoever asks: replacing the audit
// trail would leave the supervisor appending to a deleted inode.
type protectedFile struct {
	what string // the configuration key naming it, for messages
	path string // absolute and clean, as the configuration holds it
	id   fileID // zero when the file does not exist (yet)
}

// fileID is a file's identity: its device and inode.
type fileID struct{ dev, ino uint64 }

func statID(st *unix.Stat_t) fileID { return fileID{uint64(st.Dev), st.Ino} }

// protectedFiles lists the files the supervisor uses: its configuration,
// its audit sinks, HMAC key and sealed head, its saved state, PID file and command
// socket. Each is identified by path and, when it exists, by device and
// inode (stat follows symbolic links, as the supervisor's own opens do).
// Safe for concurrent use: it reads only the configuration.
func (s *Supervisor) protectedFiles() []protectedFile {
	var out []protectedFile
	add := func(what, path string) {
		if path == "" || path == audit.TargetStdout || path == audit.TargetStderr {
			return
		}
		pf := protectedFile{what: what, path: path}
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil {
			pf.id = statID(&st)
		}
		out = append(out, pf)
	}
	add("the configuration file", s.cfg.Path)
	add("audit_logs_target", s.cfg.AuditLogsTarget)
	add("audit_logs_json_target", s.cfg.AuditLogsJSONTarget)
	add("audit_hmac_key_file", s.cfg.Audit.HMACKeyFile)
	if s.cfg.Audit.HMACKeyFile != "" {
		add("the audit trail's sealed head, audit_hmac_key_file + "+audit.HeadSuffix, audit.HeadPath(s.cfg.Audit.HMACKeyFile))
	}
	add("saved_state", s.cfg.SavedState)
	add("pid_file_path", s.cfg.PidFilePath)
	add("command_socket", s.cfg.CommandSocket)
	return out
}

// protectedPathError refuses a path that names a protected file.
func protectedPathError(path string, pf protectedFile, how string) error {
	return fmt.Errorf("refusing to write the state to %s: it %s %s (%s), which the supervisor itself uses", path, how, pf.path, pf.what)
}

// checkProtectedPath refuses path (absolute, clean) when it is the path
// of a protected file. Checked before anything is opened.
func checkProtectedPath(path string, protected []protectedFile) error {
	for _, pf := range protected {
		if path == pf.path {
			return protectedPathError(path, pf, "is")
		}
	}
	return nil
}

// checkProtectedID refuses an existing file id (the file a rename would
// replace) when it is a protected file, under whatever name.
func checkProtectedID(path string, id fileID, protected []protectedFile) error {
	for _, pf := range protected {
		if pf.id != (fileID{}) && pf.id == id {
			return protectedPathError(path, pf, "is another name of")
		}
	}
	return nil
}
