package peercred

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// Proc reads process facts from a procfs tree. The zero Proc reads /proc;
// tests set FS to a fake tree laid out like /proc ("<pid>/stat",
// "<pid>/comm"). A Proc is safe for concurrent use.
type Proc struct {
	FS fs.FS // nil: os.DirFS("/proc")
}

var procFS = os.DirFS("/proc")

func (p Proc) fsys() fs.FS {
	if p.FS == nil {
		return procFS
	}
	return p.FS
}

// maxProcFile bounds what is read of one /proc file: stat lines are well
// under 1 KiB, comm under 16 bytes.
const maxProcFile = 4096

func (p Proc) read(pid int32, name string) ([]byte, error) {
	f, err := p.fsys().Open(strconv.FormatInt(int64(pid), 10) + "/" + name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProcFile))
}

// StartTime returns when process pid started, in clock ticks after boot
// (field 22 of /proc/<pid>/stat). Together with the PID it names one process
// for the life of the system. A start time of 0 (only a process started in
// the first tick after boot) is reported as 1, so that 0 can mean "not
// known" in Cred. The error names the pid and the file.
func (p Proc) StartTime(pid int32) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("peercred: no process for pid %d", pid)
	}
	b, err := p.read(pid, "stat")
	if err != nil {
		return 0, fmt.Errorf("peercred: /proc/%d/stat: %w", pid, err)
	}
	st, err := parseStartTime(b)
	if err != nil {
		return 0, fmt.Errorf("peercred: /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStartTime extracts field 22 (starttime) from a /proc/<pid>/stat
// line. Field 2 is the comm in parentheses and may itself contain spaces and
// parentheses, so fields are counted from after the last ')': the first
// field there is field 3 (state).
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' closing the comm field")
	}
	fields := bytes.Fields(b[i+1:])
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("%d fields after the comm, want at least %d", len(fields), idx+1)
	}
	v, err := strconv.ParseUint(string(fields[idx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field 22 (starttime) %q is not a number", fields[idx])
	}
	if v == 0 {
		// Only processes started in the first tick after boot; 0 means "gone" in Cred.
		v = 1
	}
	return v, nil
}

// Comm returns the name (/proc/<pid>/comm) of c's process, or Unknown unless
// it can show the name belongs to the process that connected: c.Start must
// be known, and the process's start time must equal it both before and
// after the name is read. So a process that has exited yields Unknown,
// never the name of a later process given the same PID (short of one
// started within the same clock tick as the peer, 10 ms on usual kernels).
//
// The name is chosen by the peer itself (prctl PR_SET_NAME, up to 15
// bytes); treat it as untrusted text and escape it before display.
func (p Proc) Comm(c Cred) string {
	if !c.Known || c.PID <= 0 || c.Start == 0 {
		return Unknown
	}
	if st, err := p.StartTime(c.PID); err != nil || st != c.Start {
		return Unknown
	}
	b, err := p.read(c.PID, "comm")
	if err != nil {
		return Unknown
	}
	if st, err := p.StartTime(c.PID); err != nil || st != c.Start {
		return Unknown
	}
	return string(bytes.TrimSuffix(b, []byte("\n")))
}
