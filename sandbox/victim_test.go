//go:build linux && cgo

package sandbox

// Victim tests (style habit 13): the test binary re-executes itself as a
// child, the victim, which confines itself (privilege drop, filter) and
// then makes one forbidden call, or runs a small proxy workload. The
// parent asserts how the child ended: EPERM in errno mode, SIGSYS in kill
// mode, and the natural outcome without a filter (mode off), which shows
// that the EPERM came from the filter.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Environment of a victim.
const (
	envVictim  = "SOZU_SANDBOX_VICTIM"  // probe name, or "workload"
	envMode    = "SOZU_SANDBOX_MODE"    // kill, errno, off
	envAs      = "SOZU_SANDBOX_AS"      // nobody (drop) or root (allow root)
	envBackend = "SOZU_SANDBOX_BACKEND" // workload: backend address
	envMarker  = "SOZU_SANDBOX_MARKER"  // workload: write the strace marker after Confine
)

// marker is written to descriptor -1 right after Confine: in an strace
// log, every call after it is one the worker makes confined.
const marker = "SOZU-SANDBOX-MARKER"

// Descriptors of a workload victim.
const (
	victimListenerFD = 3 // inherited listener (as from the bootstrap)
	victimSCMFD      = 4 // unix socket: a second listener arrives on it at run time
)

func TestMain(m *testing.M) {
	if name := os.Getenv(envVictim); name != "" {
		os.Exit(victimMain(name))
	}
	code := m.Run()
	if sharedExe.path != "" {
		os.RemoveAll(filepath.Dir(sharedExe.path))
	}
	os.Exit(code)
}

// victimMain runs in the child. Exit status 0 with a result line on stdout,
// or death by signal.
func victimMain(name string) int {
	if fdVictim, ok := strings.CutPrefix(name, "fd:"); ok {
		return descriptorsMain(fdVictim) // first, as a worker does
	}
	mode, err := ParseMode(os.Getenv(envMode))
	if err != nil {
		fmt.Println("setup:", err)
		return 3
	}
	asRoot := os.Getenv(envAs) == "root"
	acct, err := LookupAccount(map[bool]string{true: "root", false: "nobody"}[asRoot], "")
	if err != nil {
		fmt.Println("setup:", err)
		return 3
	}
	opts := Options{Account: acct, AllowRoot: asRoot, Mode: mode}
	switch name {
	case "workload":
		return workloadMain(opts)
	case "drop":
		return dropMain(acct)
	case "twice":
		for i := range 2 {
			if err := Load(mode); err != nil {
				fmt.Printf("load %d: %v\n", i+1, err)
				return 0
			}
		}
		fmt.Println("loaded twice")
		return 0
	case "datarace":
		return dataraceMain(opts)
	case "identity":
		id, err := Confine(opts)
		if err != nil {
			fmt.Println("confine:", err)
			return 4
		}
		fmt.Printf("uid=%d,%d,%d gid=%d,%d,%d matches=%v\n", id.RUID, id.UID, id.SUID, id.RGID, id.GID, id.SGID, id.Matches(acct))
		return 0
	case "panic":
		if _, err := Confine(opts); err != nil {
			fmt.Println("confine:", err)
			return 4
		}
		var m map[string]int
		m["crash"]++ // a bug, not a sandbox violation
		return 0
	}
	p, ok := probeByName(name)
	if !ok {
		fmt.Println("setup: unknown probe", name)
		return 3
	}
	var st probeState
	if err := st.prepare(p, acct); err != nil {
		fmt.Println("setup:", err)
		return 3
	}
	if _, err := Confine(opts); err != nil {
		fmt.Println("confine:", err)
		return 4
	}
	r, e := p.call(&st)
	fmt.Printf("errno=%s ret=%d\n", errnoName(e), r)
	return 0
}

// dropMain drops privileges, no_new_privs and core dumps (no filter), and
// reports what the kernel says of the result.
func dropMain(acct Account) int {
	if err := DropPrivileges(acct, false); err != nil {
		fmt.Println("drop:", err)
		return 0
	}
	if err := SetNoNewPrivs(); err != nil {
		fmt.Println("nnp:", err)
		return 0
	}
	if err := DisableCoreDumps(); err != nil {
		fmt.Println("core:", err)
		return 0
	}
	r, e, sv := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	groups, _ := unix.Getgroups()
	_, setuid0 := sys(unix.SYS_SETUID, 0)
	_, setgroups := sys(unix.SYS_SETGROUPS, 0, 0)
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CORE, &lim)
	dumpable, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	fmt.Printf("uid=%d,%d,%d gid=%d,%d,%d groups=%d setuid0=%s setgroups=%s core=%d,%d dumpable=%d nnp=%d\n",
		r, e, sv, rg, eg, sg, len(groups), errnoName(setuid0), errnoName(setgroups), lim.Cur, lim.Max, dumpable, nnp)
	return 0
}

// dataraceMain confines itself, then races: a binary built with -race must
// report the race (exit status 66), not die of SIGSYS.
func dataraceMain(opts Options) int {
	if _, err := Confine(opts); err != nil {
		fmt.Println("confine:", err)
		return 4
	}
	x := 0
	done := make(chan struct{})
	go func() {
		x = 1
		close(done)
	}()
	x = 2
	<-done
	fmt.Println("raced", x)
	return 0
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "0"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

// probeState is what probes need made before the filter: TCP sockets (for
// bind, listen and socket options), a read-write page (for mprotect) and,
// when the probe asks, a sibling process.
type probeState struct {
	sock  int // AF_INET, SOCK_STREAM
	sock6 int // AF_INET6, SOCK_STREAM
	page  []byte

	// sibling is the pid of a process running as the account the victim
	// drops to, as a sibling worker does: `cat` reading a pipe whose write
	// end only the victim holds, so that it ends with the victim (and
	// Pdeathsig kills it if the victim dies first).
	sibling int
	keep    *os.File // the write end of the sibling's stdin
}

func (s *probeState) prepare(p probe, acct Account) error {
	var err error
	if s.sock, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	if s.sock6, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	if s.page, err = unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		return err
	}
	if !p.sibling {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("cat")
	cmd.Stdin, cmd.Dir = r, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(acct.UID), Gid: uint32(acct.GID)}}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("sibling: %w", err)
	}
	s.sibling, s.keep = cmd.Process.Pid, w
	return nil
}

func cstr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return p
}

// probe is one forbidden call. root: run it as root (allowed root), because
// unprivileged it would fail with EPERM by itself and the errno mode would
// prove nothing; its arguments are harmless even if the filter let it by.
// errno: what the filter answers instead of the mode's action (0: the mode).
// sibling: start a sibling process of the victim's final uid first (see
// probeState.sibling).
type probe struct {
	name    string
	root    bool
	sibling bool
	errno   syscall.Errno
	call    func(*probeState) (uintptr, syscall.Errno)
}

// sys makes a raw system call; pointer arguments (*byte, unsafe.Pointer)
// stay alive until it returns.
func sys(nr uintptr, args ...any) (uintptr, syscall.Errno) {
	var v [6]uintptr
	for i, a := range args {
		switch a := a.(type) {
		case int:
			v[i] = uintptr(a)
		case uintptr:
			v[i] = a
		case *byte:
			v[i] = uintptr(unsafe.Pointer(a))
		case unsafe.Pointer:
			v[i] = uintptr(a)
		default:
			panic(fmt.Sprintf("sys: argument %d of type %T", i, a))
		}
	}
	r, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	runtime.KeepAlive(args)
	return r, e
}

// socketProbe creates a socket and closes it when the filter let it by.
func socketProbe(domain, typ, proto int) func(*probeState) (uintptr, syscall.Errno) {
	return func(*probeState) (uintptr, syscall.Errno) {
		r, e := sys(unix.SYS_SOCKET, domain, typ|unix.SOCK_CLOEXEC, proto)
		if e == 0 {
			unix.Close(int(r))
		}
		return r, e
	}
}

var probes = []probe{
	{name: "execve", call: func(*probeState) (uintptr, syscall.Errno) {
		argv := []*byte{cstr("/nonexistent/sozu"), nil}
		return sys(unix.SYS_EXECVE, cstr("/nonexistent/sozu"), unsafe.Pointer(&argv[0]), unsafe.Pointer(&argv[1]))
	}},
	{name: "execveat", call: func(*probeState) (uintptr, syscall.Errno) {
		argv := []*byte{nil}
		return sys(unix.SYS_EXECVEAT, unix.AT_FDCWD, cstr("/nonexistent/sozu"), unsafe.Pointer(&argv[0]), unsafe.Pointer(&argv[0]), 0)
	}},
	{name: "fork", call: func(*probeState) (uintptr, syscall.Errno) {
		// clone without CLONE_THREAD is fork; a child would exit at once.
		r, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 && r == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		return r, e
	}},
	{name: "clone3", errno: unix.ENOSYS, call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_CLONE3, 0, 0)
	}},
	{name: "ptrace", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x3fffffff, 0, 0)
	}},
	{name: "mount", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_MOUNT, cstr("none"), cstr("/nonexistent/sozu"), cstr("tmpfs"), 0, 0)
	}},
	{name: "umount2", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_UMOUNT2, cstr("/nonexistent/sozu"), 0)
	}},
	{name: "unshare", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER) // EINVAL in a multi-threaded process
	}},
	{name: "setns", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_SETNS, ^uintptr(0), 0)
	}},
	{name: "bpf", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_BPF, 0xffff, 0, 0)
	}},
	{name: "socket AF_UNIX", call: socketProbe(unix.AF_UNIX, unix.SOCK_STREAM, 0)},
	{name: "socket AF_NETLINK", call: socketProbe(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)},
	{name: "socket AF_PACKET", root: true, call: socketProbe(unix.AF_PACKET, unix.SOCK_RAW, 0)},
	{name: "socket AF_INET SOCK_DGRAM UDP-Lite", call: socketProbe(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE)},
	{name: "socketpair", call: func(*probeState) (uintptr, syscall.Errno) {
		var fds [2]int32
		r, e := sys(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, unsafe.Pointer(&fds))
		if e == 0 {
			unix.Close(int(fds[0]))
			unix.Close(int(fds[1]))
		}
		return r, e
	}},
	{name: "openat", call: func(*probeState) (uintptr, syscall.Errno) {
		r, e := sys(unix.SYS_OPENAT, unix.AT_FDCWD, cstr("/"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if e == 0 {
			unix.Close(int(r))
		}
		return r, e
	}},
	{name: "unlinkat", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_UNLINKAT, unix.AT_FDCWD, cstr("/nonexistent/sozu"), 0)
	}},
	{name: "fchmodat", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_FCHMODAT, unix.AT_FDCWD, cstr("/nonexistent/sozu"), 0o777)
	}},
	{name: "getdents64", call: func(*probeState) (uintptr, syscall.Errno) {
		var buf [256]byte
		return sys(unix.SYS_GETDENTS64, 0, unsafe.Pointer(&buf[0]), len(buf)) // stdin: ENOTDIR
	}},
	{name: "mmap PROT_EXEC", call: func(*probeState) (uintptr, syscall.Errno) {
		r, e := sys(unix.SYS_MMAP, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
		if e == 0 {
			sys(unix.SYS_MUNMAP, r, os.Getpagesize())
		}
		return r, e
	}},
	{name: "mprotect PROT_EXEC", call: func(s *probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_MPROTECT, unsafe.Pointer(&s.page[0]), len(s.page), unix.PROT_READ|unix.PROT_EXEC)
	}},
	{name: "memfd_create", call: func(*probeState) (uintptr, syscall.Errno) {
		r, e := sys(unix.SYS_MEMFD_CREATE, cstr("sozu"), unix.MFD_CLOEXEC)
		if e == 0 {
			unix.Close(int(r))
		}
		return r, e
	}},
	{name: "setuid", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_SETUID, unix.Getuid()) // to itself: allowed by the kernel
	}},
	{name: "chroot", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_CHROOT, cstr("/nonexistent/sozu"))
	}},
	{name: "kexec_load", root: true, call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_KEXEC_LOAD, 0, 17, 0, 0) // more than KEXEC_SEGMENT_MAX segments: EINVAL
	}},
	{name: "init_module", root: true, call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_INIT_MODULE, 0, 0, cstr("")) // empty image: ENOEXEC
	}},
	{name: "process_vm_writev", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_PROCESS_VM_WRITEV, unix.Getpid(), 0, 0, 0, 0, 0)
	}},
	{name: "bind", call: func(s *probeState) (uintptr, syscall.Errno) {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}}
		return sys(unix.SYS_BIND, s.sock, unsafe.Pointer(&sa), int(unsafe.Sizeof(sa)))
	}},
	{name: "listen", call: func(s *probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_LISTEN, s.sock, 1)
	}},
	{name: "sendmsg", call: func(*probeState) (uintptr, syscall.Errno) {
		var msg unix.Msghdr
		return sys(unix.SYS_SENDMSG, ^uintptr(0), unsafe.Pointer(&msg), 0) // EBADF
	}},
	{name: "prctl PR_SET_DUMPABLE", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1)
	}},
	{name: "kill", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_KILL, unix.Getpid(), 0)
	}},
	// splice with an offset writes a regular file where it says (a
	// pwrite): a worker could rewrite its access log file.
	{name: "splice off_in", call: func(*probeState) (uintptr, syscall.Errno) {
		var off int64
		return sys(unix.SYS_SPLICE, ^uintptr(0), unsafe.Pointer(&off), ^uintptr(0), 0, 1, 0) // EBADF
	}},
	{name: "splice off_out", call: func(*probeState) (uintptr, syscall.Errno) {
		var off int64
		return sys(unix.SYS_SPLICE, ^uintptr(0), 0, ^uintptr(0), unsafe.Pointer(&off), 1, 0) // EBADF
	}},
	{name: "io_uring_setup", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_IO_URING_SETUP, 1, 0) // EFAULT
	}},
	{name: "ioctl", errno: unix.ENOTTY, call: func(*probeState) (uintptr, syscall.Errno) {
		var t unix.Termios
		return sys(unix.SYS_IOCTL, ^uintptr(0), unix.TCGETS, unsafe.Pointer(&t)) // EBADF
	}},
	// A sibling worker runs as the same uid: without the pid condition on
	// tgkill, a confined worker could signal (kill) it.
	{name: "tgkill sibling", sibling: true, call: func(s *probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_TGKILL, s.sibling, s.sibling, 0) // signal 0: permission check only
	}},
	{name: "socket AF_INET IPPROTO_MPTCP", call: socketProbe(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)},
	{name: "socket AF_INET6 IPPROTO_MPTCP", call: socketProbe(unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)},
	{name: "socket AF_INET IPPROTO_SCTP", call: socketProbe(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)},
	{name: "setsockopt TCP_ULP", call: func(s *probeState) (uintptr, syscall.Errno) {
		ulp := []byte("tls")
		return sys(unix.SYS_SETSOCKOPT, s.sock, unix.SOL_TCP, unix.TCP_ULP, unsafe.Pointer(&ulp[0]), len(ulp)) // ENOTCONN
	}},
	{name: "setsockopt TCP_CONGESTION", call: func(s *probeState) (uintptr, syscall.Errno) {
		cc := []byte("reno")
		return sys(unix.SYS_SETSOCKOPT, s.sock, unix.SOL_TCP, unix.TCP_CONGESTION, unsafe.Pointer(&cc[0]), len(cc))
	}},
	{name: "setsockopt SO_REUSEPORT", call: func(s *probeState) (uintptr, syscall.Errno) {
		one := int32(1)
		return sys(unix.SYS_SETSOCKOPT, s.sock, unix.SOL_SOCKET, unix.SO_REUSEPORT, unsafe.Pointer(&one), 4)
	}},
}

func probeByName(name string) (probe, bool) {
	for _, p := range slices.Concat(probes, allowedProbes) {
		if p.name == name {
			return p, true
		}
	}
	return probe{}, false
}

// victimResult is how a victim ended.
type victimResult struct {
	signal syscall.Signal // 0: exited
	code   int
	out    string
}

func (r victimResult) String() string {
	if r.signal != 0 {
		return fmt.Sprintf("killed by %v; output %q", r.signal, r.out)
	}
	return fmt.Sprintf("exit %d; output %q", r.code, r.out)
}

// sharedExe is a copy of the test binary that any user may run: go test
// builds it in a directory only its owner can enter.
var sharedExe struct {
	once sync.Once
	path string
	err  error
}

func shareExe(t *testing.T) string {
	t.Helper()
	sharedExe.once.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			sharedExe.err = err
			return
		}
		dir, err := os.MkdirTemp("", "sozu-sandbox-victim-")
		if err != nil {
			sharedExe.err = err
			return
		}
		b, err := os.ReadFile(exe)
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		path := filepath.Join(dir, "sandbox.test")
		if err == nil {
			err = os.WriteFile(path, b, 0o755)
		}
		sharedExe.path, sharedExe.err = path, err
	})
	if sharedExe.err != nil {
		t.Fatal(sharedExe.err)
	}
	return sharedExe.path
}

func victimCmd(ctx context.Context, t *testing.T, name string, mode Mode, asRoot bool) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	as := "nobody"
	if asRoot {
		as = "root"
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") { // coverage would open files at exit
			env = append(env, kv)
		}
	}
	if os.Getenv("GORACE") == "" {
		env = append(env, "GORACE=atexit_sleep_ms=0") // not 1 s per victim under -race
	}
	cmd.Env = append(env, envVictim+"="+name, envMode+"="+string(mode), envAs+"="+as)
	cmd.Stderr = &bytes.Buffer{}
	return cmd
}

func runVictim(t *testing.T, name string, mode Mode, asRoot bool) victimResult {
	return runVictimCred(t, name, mode, asRoot, nil)
}

// runVictimCred runs a victim started with cred (nil: as the test runs).
func runVictimCred(t *testing.T, name string, mode Mode, asRoot bool, cred *syscall.Credential) victimResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := victimCmd(ctx, t, name, mode, asRoot)
	if cred != nil {
		cmd.Path, cmd.Args[0] = shareExe(t), shareExe(t)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.Output()
	res := victimResult{out: strings.TrimSpace(string(out))}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			res.signal = ws.Signal()
		} else {
			res.code = ws.ExitStatus()
		}
	default:
		t.Fatalf("victim %s (%s): %v", name, mode, err)
	}
	if stderr := cmd.Stderr.(*bytes.Buffer).String(); stderr != "" {
		t.Logf("victim %s (%s) stderr: %s", name, mode, stderr)
	}
	return res
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (privilege drop and root probes); CI runs as root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no nobody account: %v", err)
	}
}

// TestVictimForbidden runs every probe in three children: without a filter
// (the natural outcome, which must not be EPERM nor a signal), in errno mode
// (EPERM, or the rule's errno) and in kill mode (death by SIGSYS, or the
// rule's errno).
func TestVictimForbidden(t *testing.T) {
	requireRoot(t)
	if len(probes) < 20 {
		t.Fatalf("only %d probes", len(probes))
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			natural := runVictim(t, p.name, ModeOff, p.root)
			if natural.signal != 0 || natural.code != 0 || !strings.HasPrefix(natural.out, "errno=") {
				t.Fatalf("without filter: %v", natural)
			}
			if natural.out == "errno=EPERM ret=0" || strings.HasPrefix(natural.out, "errno=EPERM ") {
				t.Fatalf("without filter the probe already fails with EPERM: errno mode would prove nothing")
			}
			want := "errno=EPERM "
			if p.errno != 0 {
				want = "errno=" + errnoName(p.errno) + " "
			}
			got := runVictim(t, p.name, ModeErrno, p.root)
			if got.signal != 0 || !strings.HasPrefix(got.out, want) {
				t.Errorf("errno mode: %v; want %q…", got, want)
			}
			got = runVictim(t, p.name, ModeKill, p.root)
			if p.errno != 0 {
				if got.signal != 0 || !strings.HasPrefix(got.out, want) {
					t.Errorf("kill mode: %v; want %q…", got, want)
				}
			} else if got.signal != unix.SIGSYS {
				t.Errorf("kill mode: %v; want death by SIGSYS", got)
			}
			t.Logf("off: %s", natural.out)
		})
	}
}

// workloadMain is a small worker: confined, it proxies connections
// accepted on an inherited listener to a backend (io.Copy, so splice),
// receives a second listener over SCM_RIGHTS and serves TLS on it, does a
// TLS handshake in memory, starts and ends threads, collects garbage and
// uses timers; then it waits for the parent, which inspects its threads.
func workloadMain(opts Options) int {
	fail := func(step string, err error) int {
		fmt.Printf("fail %s: %v\n", step, err)
		return 5
	}
	lf := os.NewFile(victimListenerFD, "listener")
	ln, err := net.FileListener(lf)
	if err != nil {
		return fail("inherited listener", err)
	}
	lf.Close()
	scm := victimSCMFD
	unix.CloseOnExec(scm)
	backend := os.Getenv(envBackend)
	if _, err := Confine(opts); err != nil {
		return fail("confine", err)
	}
	if os.Getenv(envMarker) != "" {
		unix.Write(-1, []byte(marker))
	}
	fmt.Println("confined")

	go proxy(ln, backend)

	// Listener descriptor over SCM_RIGHTS, as worker/listeners.go receives it.
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(scm, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(scm, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fail("recvmsg", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fail("scm message", fmt.Errorf("%d messages, %v", len(msgs), err))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fail("scm rights", fmt.Errorf("%v, %v", fds, err))
	}
	f2 := os.NewFile(uintptr(fds[0]), "received")
	ln2, err := net.FileListener(f2)
	if err != nil {
		return fail("received listener", err)
	}
	f2.Close()
	cert, err := selfSigned()
	if err != nil {
		return fail("certificate", err)
	}
	go serveTLS(tls.NewListener(ln2, &tls.Config{Certificates: []tls.Certificate{cert}}))

	if err := tlsInMemory(cert); err != nil {
		return fail("tls in memory", err)
	}
	if err := churnThreads(); err != nil {
		return fail("threads", err)
	}
	if err := churnMemory(); err != nil {
		return fail("memory", err)
	}
	if err := timers(); err != nil {
		return fail("timers", err)
	}
	fmt.Println("ready")

	// Wait for the parent's word, then one more round.
	if _, err := unix.Read(scm, buf); err != nil {
		return fail("waiting for the parent", err)
	}
	runtime.GC()
	fmt.Println("ok")
	return 0
}

// proxy copies each accepted connection to a new backend connection and
// back, as the TCP proxy does.
func proxy(ln net.Listener, backend string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			b, err := net.DialTimeout("tcp", backend, 5*time.Second)
			if err != nil {
				fmt.Println("fail dial backend:", err)
				return
			}
			defer b.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			done := make(chan struct{})
			go func() {
				io.Copy(b, c)
				b.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, b)
			c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

func serveTLS(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, "tls:"+line)
		}()
	}
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "victim"},
		DNSNames:     []string{"victim"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func tlsInMemory(cert tls.Certificate) error {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	a, b := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		// No session ticket: over an unbuffered net.Pipe its write would
		// wait for the client's read, while the client writes.
		// Closing the pipe, not the tls.Conn: both close_notify writes
		// would wait for a reader, up to tls's 5 s.
		s := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true})
		defer a.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(s, buf); err != nil {
			errc <- err
			return
		}
		_, err := s.Write(buf)
		errc <- err
	}()
	c := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "victim"})
	defer b.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "hello" {
		return fmt.Errorf("echo %q", buf)
	}
	return <-errc
}

// churnThreads makes the runtime start threads (goroutines blocked in
// read(2) on a blocking pipe each hold one) and end some (a goroutine that
// returns locked to its thread takes the thread with it).
func churnThreads() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			b := make([]byte, 1)
			unix.Read(p[0], b)
		})
	}
	// Each goroutine in the read holds a thread of its own.
	for deadline := time.Now().Add(10 * time.Second); inRead() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d goroutines blocked in read(2) after 10 s", inRead(), n)
		}
	}
	unix.Write(p[1], make([]byte, n))
	wg.Wait()
	for range 4 {
		wg.Go(func() {
			runtime.LockOSThread()
			time.Sleep(time.Millisecond)
		})
	}
	wg.Wait()
	prev := runtime.GOMAXPROCS(1)
	runtime.GOMAXPROCS(prev + 2)
	runtime.GOMAXPROCS(prev)
	return nil
}

// inRead counts the goroutines of churnThreads in a system call (the
// read), from a dump of every goroutine's stack.
func inRead() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, " [syscall") && strings.Contains(g, "churnThreads.func") {
			n++
		}
	}
	return n
}

func churnMemory() error {
	var wg sync.WaitGroup
	var sink [8][][]byte
	for i := range 8 {
		wg.Go(func() {
			for j := range 2000 {
				b := make([]byte, 32<<10)
				b[j%len(b)] = byte(j)
				sink[i] = append(sink[i], b)
				if len(sink[i]) > 200 {
					sink[i] = nil
				}
			}
		})
	}
	wg.Wait()
	runtime.GC()
	debug.FreeOSMemory()
	big := make([]byte, 64<<20) // a large span: mmap and, freed, munmap/madvise
	big[len(big)-1] = 1
	runtime.KeepAlive(big)
	big = nil
	runtime.GC()
	debug.FreeOSMemory()
	return nil
}

// timers: sleeps, a ticker, AfterFunc, and long enough (> 1 s) for the
// runtime's periodic GOMAXPROCS check.
func timers() error {
	fired := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(fired) })
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	deadline := time.After(1200 * time.Millisecond)
	ticks := 0
	for {
		select {
		case <-tk.C:
			ticks++
		case <-deadline:
			select {
			case <-fired:
			default:
				return fmt.Errorf("AfterFunc did not fire")
			}
			if ticks < 10 {
				return fmt.Errorf("only %d ticks", ticks)
			}
			return nil
		}
	}
}

// workloadRun is a running workload victim and what the parent holds.
type workloadRun struct {
	cmd   *exec.Cmd
	lines chan string
	scm   *os.File // parent end of the SCM socket
	ln2   *net.TCPListener
	front string // address of the inherited listener

	atConfined []ThreadStatus // the victim's threads when it said "confined"
}

// startWorkload starts a workload victim; wrap (e.g. strace) prefixes the
// command line.
func startWorkload(t *testing.T, mode Mode, wrap []string, extraEnv ...string) *workloadRun {
	t.Helper()
	backend := listenTCP(t)
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, strings.ToUpper(line))
			}()
		}
	}()
	front := listenTCP(t)
	frontFile, err := front.File()
	if err != nil {
		t.Fatal(err)
	}
	defer frontFile.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parentEnd, childEnd := os.NewFile(uintptr(pair[0]), "scm-parent"), os.NewFile(uintptr(pair[1]), "scm-child")
	defer childEnd.Close()
	t.Cleanup(func() { parentEnd.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	cmd := victimCmd(ctx, t, "workload", mode, false)
	if len(wrap) > 0 {
		lp, err := exec.LookPath(wrap[0])
		if err != nil {
			t.Fatal(err)
		}
		cmd.Path, cmd.Args = lp, append(append([]string(nil), wrap...), cmd.Args...)
	}
	cmd.Env = append(cmd.Env, append(extraEnv, envBackend+"="+backend.Addr().String())...)
	cmd.ExtraFiles = []*os.File{frontFile, childEnd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workloadRun{cmd: cmd, lines: make(chan string, 16), scm: parentEnd, front: front.Addr().String()}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	w.ln2 = listenTCP(t)
	return w
}

func listenTCP(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// expect waits for the victim's next line to be want.
func (w *workloadRun) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case line, ok := <-w.lines:
		if !ok {
			t.Fatalf("victim ended before %q: %s", want, w.wait(t))
		}
		if line != want {
			t.Fatalf("victim said %q, want %q", line, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("victim did not say %q in 60 s", want)
	}
}

func (w *workloadRun) wait(t *testing.T) victimResult {
	t.Helper()
	for range w.lines {
	}
	err := w.cmd.Wait()
	res := victimResult{}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			res.signal = ws.Signal()
		} else {
			res.code = ws.ExitStatus()
		}
	} else if err != nil {
		t.Fatalf("waiting for the victim: %v", err)
	}
	res.out = w.cmd.Stderr.(*bytes.Buffer).String()
	return res
}

// drive does the parent's side of a workload: sends the second listener,
// proxies through the first, speaks TLS to the second, then inspect runs
// while the victim waits.
func (w *workloadRun) drive(t *testing.T, inspect func(pid int)) {
	t.Helper()
	w.expect(t, "confined")
	w.atConfined, _ = Status(w.cmd.Process.Pid)
	lf, err := w.ln2.File()
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Sendmsg(int(w.scm.Fd()), []byte{1}, unix.UnixRights(int(lf.Fd())), nil, 0)
	lf.Close()
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "ready")

	for i := range 3 {
		c, err := net.DialTimeout("tcp", w.front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "hello %d\n", i)
		got, err := io.ReadAll(c)
		c.Close()
		if want := fmt.Sprintf("HELLO %d\n", i); string(got) != want || err != nil {
			t.Fatalf("through the proxy: %q, %v; want %q", got, err, want)
		}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", w.ln2.Addr().String(),
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("TLS to the received listener: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ping\n")
	got, err := io.ReadAll(c)
	c.Close()
	if string(got) != "tls:ping\n" {
		t.Fatalf("TLS echo %q, %v", got, err)
	}
	if inspect != nil {
		inspect(w.cmd.Process.Pid)
	}
	if _, err := w.scm.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "ok")
	if res := w.wait(t); res.signal != 0 || res.code != 0 {
		t.Fatalf("victim: %v", res)
	}
}

// TestVictimWorkload: confined in kill mode as nobody, the victim proxies,
// speaks TLS, receives a listener, starts threads, collects garbage; from
// outside, every one of its threads shows Seccomp 2, NoNewPrivs 1, uid and
// gid of nobody, no capability.
func TestVictimWorkload(t *testing.T) {
	requireRoot(t)
	nobody, err := LookupAccount("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ModeKill, ModeErrno} {
		t.Run(string(mode), func(t *testing.T) {
			w := startWorkload(t, mode, nil)
			w.drive(t, func(pid int) {
				threads, err := Status(pid)
				if err != nil {
					t.Fatal(err)
				}
				if err := CheckConfined(pid, threads); err != nil {
					t.Error(err)
				}
				for _, th := range threads {
					if th.UIDs != [4]int{nobody.UID, nobody.UID, nobody.UID, nobody.UID} ||
						th.GIDs != [4]int{nobody.GID, nobody.GID, nobody.GID, nobody.GID} ||
						len(th.Groups) != 0 || th.CapEff != 0 || th.CapPrm != 0 {
						t.Errorf("thread %d: %+v", th.TID, th)
					}
					if th.Filters != 2 {
						t.Errorf("thread %d: %d filters, want 2 (policy and seal)", th.TID, th.Filters)
					}
				}
				// Threads started after the filter (clone3 answered ENOSYS,
				// then clone with CLONE_THREAD) carry it too.
				started := 0
				for _, th := range threads {
					if !slices.ContainsFunc(w.atConfined, func(o ThreadStatus) bool { return o.TID == th.TID }) {
						started++
					}
				}
				if started == 0 {
					t.Errorf("no thread started after the filter (%d then, %d now): the workload should start some", len(w.atConfined), len(threads))
				}
				// Not dumpable: /proc/<pid>/mem belongs to root; no core file.
				var st unix.Stat_t
				if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/mem", &st); err != nil || st.Uid != 0 {
					t.Errorf("/proc/%d/mem owner %d (%v): want root (not dumpable)", pid, st.Uid, err)
				}
				limits, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
				if err != nil || !regexp.MustCompile(`Max core file size\s+0\s+0\s`).Match(limits) {
					t.Errorf("core limit: %v\n%s", err, limits)
				}
				t.Logf("%d threads confined (%d started after the filter), uid %d", len(threads), started, nobody.UID)
			})
		})
	}
}

// TestVictimDrop: started as root, the victim ends with nobody's ids on
// every id, no group, and cannot get root back; started as nobody it keeps
// nobody; started with gid 0 it refuses.
func TestVictimDrop(t *testing.T) {
	requireRoot(t)
	nobody, err := LookupAccount("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	u, g := nobody.UID, nobody.GID
	want := fmt.Sprintf("uid=%d,%d,%d gid=%d,%d,%d groups=0 setuid0=EPERM setgroups=EPERM core=0,0 dumpable=0 nnp=1", u, u, u, g, g, g)
	tests := []struct {
		name string
		cred *syscall.Credential
		want string
	}{
		{"from root", nil, want},
		{"from nobody", &syscall.Credential{Uid: uint32(u), Gid: uint32(g), NoSetGroups: false}, want},
		{"from gid 0", &syscall.Credential{Uid: uint32(u), Gid: 0}, "drop: sandbox: refusing to run a worker as root: thread "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runVictimCred(t, "drop", ModeOff, false, tt.cred)
			if got.signal != 0 || got.code != 0 || !strings.HasPrefix(got.out, tt.want) {
				t.Fatalf("%v; want %q", got, tt.want)
			}
		})
	}
}

// TestVictimIdentity: Confine returns the ids the process runs as after the
// drop: the account's when started as root, its own when started as
// another uid (which cannot drop), so that the worker logs the truth.
func TestVictimIdentity(t *testing.T) {
	requireRoot(t)
	nobody, err := LookupAccount("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	const other = 64123
	tests := []struct {
		name string
		cred *syscall.Credential
		want string
	}{
		{"from root", nil, fmt.Sprintf("uid=%[1]d,%[1]d,%[1]d gid=%[2]d,%[2]d,%[2]d matches=true", nobody.UID, nobody.GID)},
		{"from another uid", &syscall.Credential{Uid: other, Gid: other}, fmt.Sprintf("uid=%[1]d,%[1]d,%[1]d gid=%[1]d,%[1]d,%[1]d matches=false", other)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runVictimCred(t, "identity", ModeKill, false, tt.cred); got.signal != 0 || got.code != 0 || got.out != tt.want {
				t.Fatalf("%v; want %q", got, tt.want)
			}
		})
	}
}

// TestVictimUnprivilegedStart: a worker started without root still loads
// the filter (no_new_privs needs no privilege).
func TestVictimUnprivilegedStart(t *testing.T) {
	requireRoot(t)
	nobody, err := LookupAccount("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	cred := &syscall.Credential{Uid: uint32(nobody.UID), Gid: uint32(nobody.GID)}
	if got := runVictimCred(t, "openat", ModeKill, false, cred); got.signal != unix.SIGSYS {
		t.Fatalf("kill mode: %v; want death by SIGSYS", got)
	}
	if got := runVictimCred(t, "openat", ModeErrno, false, cred); !strings.HasPrefix(got.out, "errno=EPERM ") {
		t.Fatalf("errno mode: %v; want EPERM", got)
	}
}

// TestVictimLoadTwice: a second Load is refused before any system call
// (it would run into the seal).
func TestVictimLoadTwice(t *testing.T) {
	for _, mode := range []Mode{ModeErrno, ModeKill} {
		got := runVictim(t, "twice", mode, false)
		if got.signal != 0 || got.out != "load 2: sandbox: the filter is already loaded in this process" {
			t.Errorf("%s mode: %v", mode, got)
		}
	}
}

// TestVictimDataRace: under -race, a confined process reports a data race
// (exit 66) instead of dying of a forbidden call made by the race runtime.
func TestVictimDataRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("needs -race")
	}
	requireRoot(t)
	got := runVictim(t, "datarace", ModeKill, false)
	if got.signal != 0 || got.code != 66 {
		t.Fatalf("%v; want exit status 66 (race detected)", got)
	}
}

// TestVictimPanic: a confined worker that panics exits with status 2 and
// its trace, as unconfined: the supervisor must not see a bug as a
// sandbox violation (SIGSYS).
func TestVictimPanic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, traceback := range []string{"", "crash"} {
		cmd := victimCmd(ctx, t, "panic", ModeKill, os.Geteuid() != 0)
		cmd.Env = append(cmd.Env, "GOTRACEBACK="+traceback)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("GOTRACEBACK=%s: %v", traceback, err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		stderr := cmd.Stderr.(*bytes.Buffer).String()
		switch {
		case !strings.Contains(stderr, "panic: assignment to entry in nil map"):
			t.Errorf("GOTRACEBACK=%s: no panic message: %s", traceback, stderr)
		case traceback == "" && (ws.Signaled() || ws.ExitStatus() != 2):
			t.Errorf("GOTRACEBACK=%s: %v; want exit status 2", traceback, ws)
		case traceback == "crash" && ws.Signal() != unix.SIGABRT:
			t.Errorf("GOTRACEBACK=%s: %v; want death by SIGABRT", traceback, ws)
		}
	}
}
