package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ThreadStatus is the confinement of one thread, as /proc/<pid>/task/<tid>/status
// shows it.
type ThreadStatus struct {
	TID        int
	Name       string // comm
	UIDs       [4]int // real, effective, saved, filesystem
	GIDs       [4]int // real, effective, saved, filesystem
	Groups     []int  // supplementary groups
	NoNewPrivs bool
	Seccomp    int    // 0 off, 1 strict, 2 filter
	Filters    int    // Seccomp_filters: filters stacked on the thread
	CapEff     uint64 // effective capabilities
	CapPrm     uint64 // permitted capabilities
}

// Confined reports whether the thread is under a seccomp filter with
// no_new_privs set.
func (t ThreadStatus) Confined() bool { return t.Seccomp == 2 && t.NoNewPrivs }

// Status reads the status of every thread of process pid (0: the calling
// process) from /proc, ordered by thread id. A thread that ends while it is
// read is left out. It needs no privilege: status files are world-readable
// even for a process that is not dumpable.
func Status(pid int) ([]ThreadStatus, error) {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	tids, err := listTasks(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listing %s: %w", dir, err)
	}
	var out []ThreadStatus
	for _, tid := range tids {
		path := dir + "/" + strconv.Itoa(tid) + "/status"
		b, err := readSmallFile(path)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			continue // the thread ended
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox: reading %s: %w", path, err)
		}
		ts, err := ParseThreadStatus(b)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %s: %w", path, err)
		}
		out = append(out, ts)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sandbox: %s: no thread left", dir)
	}
	slices.SortFunc(out, func(a, b ThreadStatus) int { return a.TID - b.TID })
	return out, nil
}

// Verify reads Status(pid) and returns an error naming every thread that
// is not confined (Seccomp 2 and NoNewPrivs 1). A worker runs it on itself
// (Load does); the supervisor may run it on a worker's pid.
func Verify(pid int) error {
	threads, err := Status(pid)
	if err != nil {
		return err
	}
	return CheckConfined(pid, threads)
}

// CheckConfined is Verify on statuses already read.
func CheckConfined(pid int, threads []ThreadStatus) error {
	var bad []string
	for _, t := range threads {
		if !t.Confined() {
			nnp := 0
			if t.NoNewPrivs {
				nnp = 1
			}
			bad = append(bad, fmt.Sprintf("thread %d (%s): Seccomp %d, NoNewPrivs %d", t.TID, t.Name, t.Seccomp, nnp))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	who := "this process"
	if pid != 0 {
		who = "process " + strconv.Itoa(pid)
	}
	return fmt.Errorf("sandbox: %s: %d of %d threads not confined (want Seccomp 2, NoNewPrivs 1): %s",
		who, len(bad), len(threads), strings.Join(bad, "; "))
}

// ParseThreadStatus parses the content of a /proc status file. Pid (the
// thread id in a task's file), Uid, Gid, Seccomp and NoNewPrivs must be
// present; Seccomp_filters, Groups and the capability lines may be absent
// (older kernels) and then read as zero.
func ParseThreadStatus(b []byte) (ThreadStatus, error) {
	var t ThreadStatus
	seen := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			t.Name = val
		case "Pid":
			t.TID, err = strconv.Atoi(val)
		case "Uid":
			t.UIDs, err = parseIDs(val)
		case "Gid":
			t.GIDs, err = parseIDs(val)
		case "Groups":
			for _, f := range strings.Fields(val) {
				g, gerr := strconv.Atoi(f)
				if gerr != nil {
					err = gerr
					break
				}
				t.Groups = append(t.Groups, g)
			}
		case "NoNewPrivs":
			var n int
			n, err = strconv.Atoi(val)
			t.NoNewPrivs = n == 1
		case "Seccomp":
			t.Seccomp, err = strconv.Atoi(val)
		case "Seccomp_filters":
			t.Filters, err = strconv.Atoi(val)
		case "CapEff":
			t.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "CapPrm":
			t.CapPrm, err = strconv.ParseUint(val, 16, 64)
		default:
			continue
		}
		if err != nil {
			return ThreadStatus{}, fmt.Errorf("field %s: invalid value %q", key, val)
		}
		seen[key] = true
	}
	for _, k := range []string{"Pid", "Uid", "Gid", "NoNewPrivs", "Seccomp"} {
		if !seen[k] {
			return ThreadStatus{}, fmt.Errorf("field %s missing", k)
		}
	}
	return t, nil
}

func parseIDs(val string) ([4]int, error) {
	var ids [4]int
	f := strings.Fields(val)
	if len(f) != 4 {
		return ids, fmt.Errorf("want 4 ids, got %d", len(f))
	}
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil {
			return ids, err
		}
		ids[i] = n
	}
	return ids, nil
}

// listTasks returns the numeric entries of a /proc/<pid>/task directory.
// It uses only openat, getdents64 and close (Load allows exactly those,
// with read, while it verifies).
func listTasks(dir string) ([]int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var tids []int
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return tids, nil
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			if tid, err := strconv.Atoi(name); err == nil {
				tids = append(tids, tid)
			}
		}
	}
}

// readSmallFile reads a /proc file with openat, read and close only (no
// fstat, no poller registration, unlike os.ReadFile).
func readSmallFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		if len(out) > 1<<20 {
			return nil, fmt.Errorf("larger than 1 MiB")
		}
	}
}
