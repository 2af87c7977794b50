// Package sandbox confines a Sōzu worker before it serves: it drops privileges
// and loads a seccomp allow-list, so that a worker exploited through its traffic can only proxy.
package sandbox

import (
	"fmt"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxSyscalls bounds the number of distinct system calls the policy may
// name (issue 6). Rules answering an errno count too: each one is code the
// kernel runs for us.
const MaxSyscalls = 60

// Mode is what the filter does to a system call the policy does not allow.
// The zero value is not a valid mode; use ParseMode or UnmarshalText, which
// map "" to ModeKill.
type Mode string

const (
	// ModeKill kills the whole worker with SIGSYS (SECCOMP_RET_KILL_PROCESS).
	// The supervisor sees the signal, records a sandbox violation and
	// relaunches the worker. The default.
	ModeKill Mode = "kill"
	// ModeErrno makes the forbidden call fail with EPERM and lets the worker
	// go on: for finding a missing rule in a staging deployment.
	ModeErrno Mode = "errno"
	// ModeOff loads no filter. The caller must log and audit it.
	ModeOff Mode = "off"
)

// ParseMode parses a sandbox_mode value: "kill", "errno" or "off", any
// case, surrounding blanks ignored; "" is ModeKill.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeKill, nil
	case ModeKill, ModeErrno, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("sandbox: invalid mode %q: want kill, errno or off", s)
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseMode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// String returns the mode's configuration spelling.
func (m Mode) String() string { return string(m) }

// Op compares one system call argument.
type Op int

const (
	// Equal holds when the argument equals Value.
	Equal Op = iota + 1
	// MaskedEqual holds when argument & Mask equals Value.
	MaskedEqual
	// EqualPID holds when the argument equals the process id (thread group
	// id) of the process that loads the filter. Value and Mask are 0 in the
	// table; Bind turns the condition into Equal with the pid as Value, and
	// the loader refuses an unbound one. Unbound, it never holds.
	EqualPID
)

// Cond is one condition on a system call argument (0-based, at most 5).
type Cond struct {
	Arg   uint
	Op    Op
	Value uint64
	Mask  uint64 // MaskedEqual only
}

// Holds reports whether args satisfies c. It is the reference semantics the
// loader compiles to BPF, and what the unit tests use.
func (c Cond) Holds(args [6]uint64) bool {
	a := args[c.Arg]
	switch c.Op {
	case Equal:
		return a == c.Value
	case MaskedEqual:
		return a&c.Mask == c.Value
	}
	return false // EqualPID: unbound
}

// Bind returns a copy of rules in which every EqualPID condition is an
// Equal condition on pid: the policy of the process pid. The loader binds
// the policy to os.Getpid() just before building the filter, in the worker
// itself, so that the pid is the worker's. rules is not modified.
func Bind(rules []Rule, pid int) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = r
		if !slices.ContainsFunc(r.Conds, func(c Cond) bool { return c.Op == EqualPID }) {
			continue
		}
		out[i].Conds = slices.Clone(r.Conds)
		for j, c := range out[i].Conds {
			if c.Op == EqualPID {
				out[i].Conds[j] = Cond{Arg: c.Arg, Op: Equal, Value: uint64(pid)}
			}
		}
	}
	return out
}

// Rule is one entry of the policy. A call matches a rule when every Cond
// holds (AND); rules naming the same system call are alternatives (OR).
// A matching call is allowed when Errno is 0, and otherwise fails with Errno
// without reaching the kernel's implementation.
type Rule struct {
	Syscall string // name as libseccomp spells it (the kernel's, without "sys_")
	Conds   []Cond
	Errno   syscall.Errno
	Why     string // who makes the call, and when
}

// Linux ABI values the conditions use, shared by amd64 and arm64.
const (
	// cloneNamespaces are the clone flags that would create namespaces.
	cloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	sockTypeMask = 0xf // SOCK_TYPE_MASK: the type without SOCK_NONBLOCK|SOCK_CLOEXEC
)

func argEq(arg uint, v uint64) Cond { return Cond{Arg: arg, Op: Equal, Value: v} }
func argPID(arg uint) Cond          { return Cond{Arg: arg, Op: EqualPID} }
func argMasked(arg uint, mask, v uint64) Cond {
	return Cond{Arg: arg, Op: MaskedEqual, Mask: mask, Value: v}
}

// noExec: arg 2 of mmap and mprotect (prot) without PROT_EXEC.
var noExec = argMasked(2, unix.PROT_EXEC, 0)

// baseRules is the allow-list of a worker after its bootstrap: what the Go
// runtime (with cgo, so glibc threads), the net and crypto/tls packages, and
// the worker's own channel and SCM socket need. docs/sandbox.md says how it
// was derived; TestPolicyCoversWorkload re-derives it when strace is there.
var baseRules = []Rule{
	// Go runtime: scheduler, memory, signals.
	{Syscall: "futex", Why: "runtime locks, notes and thread parking"},
	{Syscall: "nanosleep", Why: "runtime usleep (sysmon, spinning)"},
	{Syscall: "sched_yield", Why: "runtime osyield"},
	{Syscall: "restart_syscall", Why: "kernel restart of a sleep or futex wait interrupted by the runtime's preemption signal"},
	{Syscall: "mmap", Conds: []Cond{noExec}, Why: "runtime heap, stacks and vgetrandom state; glibc thread stacks and arenas; never executable"},
	{Syscall: "mprotect", Conds: []Cond{noExec}, Why: "glibc thread stack guard pages and arena growth; never executable"},
	{Syscall: "munmap", Why: "runtime and glibc release memory"},
	{Syscall: "madvise", Why: "runtime scavenger and glibc thread exit give memory back"},
	{Syscall: "brk", Why: "glibc malloc main arena, called by cgo when the runtime starts a thread"},
	{Syscall: "prctl", Conds: []Cond{argEq(0, unix.PR_SET_VMA), argEq(1, unix.PR_SET_VMA_ANON_NAME)},
		Why: "Go ≥ 1.25 names its anonymous mappings (GODEBUG decoratemappings)"},
	{Syscall: "rt_sigprocmask", Why: "runtime and glibc mask signals around thread start and exit"},
	{Syscall: "rt_sigreturn", Why: "return from every signal handler (preemption, SIGPIPE)"},
	{Syscall: "sigaltstack", Why: "runtime installs a signal stack on every new thread"},
	{Syscall: "rt_sigaction", Why: "os/signal after bootstrap; the runtime resets a handler before dying of a fatal signal (a crash must not read as a sandbox violation)"},
	{Syscall: "getpid", Why: "runtime preemption: tgkill(getpid(), tid, SIGURG)"},
	{Syscall: "gettid", Why: "runtime minit on every new thread"},
	{Syscall: "tgkill", Conds: []Cond{argPID(0)},
		Why: "runtime preemption signal to one of its own threads; only to its own thread group (a sibling worker runs as the same uid)"},
	{Syscall: "sched_getaffinity", Why: "runtime re-reads the CPU count every second (GOMAXPROCS updates, Go ≥ 1.25)"},
	{Syscall: "pread64", Why: "runtime re-reads the cgroup CPU limit through descriptors it opened at start"},

	// Threads: the runtime starts them through pthread_create (cgo).
	{Syscall: "clone", Conds: []Cond{argMasked(0, unix.CLONE_THREAD|cloneNamespaces, unix.CLONE_THREAD)},
		Why: "new threads only: CLONE_THREAD set, no namespace flag (no fork)"},
	{Syscall: "clone3", Errno: unix.ENOSYS, Why: "its flags sit in memory a filter cannot read: ENOSYS makes glibc fall back to clone"},
	{Syscall: "set_robust_list", Why: "glibc registers each new thread's robust futex list"},
	{Syscall: "rseq", Why: "glibc ≥ 2.35 registers restartable sequences on each new thread"},
	{Syscall: "exit", Why: "a thread ends (runtime LockOSThread exit, glibc thread exit)"},
	{Syscall: "exit_group", Why: "the worker exits"},

	// Time and randomness.
	{Syscall: "clock_gettime", Why: "time.Now when the vDSO is not mapped"},
	{Syscall: "getrandom", Why: "crypto/rand (TLS keys, nonces), runtime seeds, map hashing"},

	// Network poller.
	{Syscall: "epoll_pwait", Why: "runtime netpoll"},
	{Syscall: "epoll_ctl", Why: "registers each new connection with netpoll"},

	// Descriptors and sockets.
	{Syscall: "read", Why: "connections, the supervisor channel, the netpoll eventfd"},
	{Syscall: "write", Why: "connections, the supervisor channel, logs on stderr, the netpoll eventfd, the access log file the supervisor passed"},
	{Syscall: "writev", Why: "net.Buffers writes (head and body in one call)"},
	{Syscall: "close", Why: "connections and received listener descriptors"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET), argMasked(1, sockTypeMask, unix.SOCK_STREAM), argEq(2, 0)},
		Why: "backend connections: TCP over IPv4 (net.Dialer passes protocol 0)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET), argMasked(1, sockTypeMask, unix.SOCK_STREAM), argEq(2, unix.IPPROTO_TCP)},
		Why: "backend connections: TCP over IPv4, protocol named (never MPTCP nor SCTP)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET6), argMasked(1, sockTypeMask, unix.SOCK_STREAM), argEq(2, 0)},
		Why: "backend connections: TCP over IPv6 (net.Dialer passes protocol 0)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET6), argMasked(1, sockTypeMask, unix.SOCK_STREAM), argEq(2, unix.IPPROTO_TCP)},
		Why: "backend connections: TCP over IPv6, protocol named (never MPTCP nor SCTP)"},
	{Syscall: "connect", Why: "backend connections"},
	{Syscall: "accept4", Why: "client connections on the listeners the supervisor passed"},
	{Syscall: "recvmsg", Why: "listener descriptors and reopened access log files arriving over SCM_RIGHTS at run time; a peek (MSG_PEEK) at the connection of a client whose request waits for its backend, to see whether it left"},
	{Syscall: "shutdown", Why: "half-close when one side of a proxied stream ends"},
	{Syscall: "getsockopt", Why: "SO_ERROR after a non-blocking connect; SO_TYPE of a received listener; TCP_INFO (bytes acknowledged) of a TCP relay write past its deadline; TCP_INFO (state) of a client connection with bytes waiting, whose request waits for its backend"},
	// setsockopt: only the (level, option) pairs the worker sets; a new
	// option (TCP_ULP, TCP_CONGESTION, SO_REUSEPORT, …) is new kernel code.
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.SOL_SOCKET), argEq(2, unix.SO_KEEPALIVE)},
		Why: "net: keep-alive on every accepted and dialled TCP connection"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.SOL_SOCKET), argEq(2, unix.SO_LINGER)},
		Why: "worker/tcp: SO_LINGER 0 before a close, so that a peer's reset reaches the other peer as a reset"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.SOL_SOCKET), argEq(2, unix.SO_RCVTIMEO)},
		Why: "worker/listeners.go: receive timeout on the SCM socket while waiting for a listener"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_TCP), argEq(2, unix.TCP_NODELAY)},
		Why: "net: no Nagle on every accepted and dialled TCP connection"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_TCP), argEq(2, unix.TCP_QUICKACK)},
		Why: "worker/backends: ACK a backend's response at once when it needs more than one read (no delayed-ACK stall)"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_TCP), argEq(2, unix.TCP_KEEPIDLE)},
		Why: "net: keep-alive idle time (15 s default) on every TCP connection"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_TCP), argEq(2, unix.TCP_KEEPINTVL)},
		Why: "net: keep-alive probe interval on every TCP connection"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_TCP), argEq(2, unix.TCP_KEEPCNT)},
		Why: "net: keep-alive probe count on every TCP connection"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.IPPROTO_IPV6), argEq(2, unix.IPV6_V6ONLY)},
		Why: "net: every AF_INET6 socket it creates (backend connections over IPv6)"},
	{Syscall: "getsockname", Why: "local address of accepted, dialled and received sockets"},
	{Syscall: "getpeername", Why: "peer address of accepted and dialled sockets"},
	// No offsets: with one, splice into a regular file writes at that
	// offset (a pwrite), so a worker could rewrite the access log file it
	// appends to (docs/observability.md).
	{Syscall: "splice", Conds: []Cond{argEq(1, 0), argEq(3, 0)},
		Why: "between two TCP connections through a pipe, never with an offset: HTTP Content-Length bodies (TCPConn.ReadFrom, worker/proxy/splice.go), bulk TCP relays (worker/tcp/splice.go)"},
	{Syscall: "pipe2", Why: "the pipes splices go through"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_GETFD)}, Why: "descriptor checks (worker bootstrap, net.FileListener)"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_SETFD)}, Why: "close-on-exec on received descriptors"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_GETFL)}, Why: "os.NewFile checks for non-blocking mode"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_SETFL)}, Why: "non-blocking mode on received and dialled sockets"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_DUPFD_CLOEXEC)}, Why: "net.FileListener duplicates a received listener"},
	{Syscall: "fcntl", Conds: []Cond{argEq(1, unix.F_SETPIPE_SZ)}, Why: "size of the splice pipe"},
	{Syscall: "ioctl", Errno: unix.ENOTTY, Why: "terminal checks (logrus on stderr): answered 'not a terminal', never performed"},
}

// udpRules are what UDP proxying (worker/udp) adds: datagram sockets to
// backends and health probes, the SO_BROADCAST option net sets on each, and
// sendto for replies sent from the listener's socket to clients. Listener
// datagrams arrive by recvmsg, already allowed; backend sockets are
// connected (connect) and use read/write/recvmsg. No recvmmsg/sendmmsg:
// worker/udp reads one datagram per call (docs/sandbox.md).
var udpRules = []Rule{
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET), argMasked(1, sockTypeMask, unix.SOCK_DGRAM), argEq(2, 0)},
		Why: "UDP backends over IPv4 (net.Dialer passes protocol 0)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET), argMasked(1, sockTypeMask, unix.SOCK_DGRAM), argEq(2, unix.IPPROTO_UDP)},
		Why: "UDP backends over IPv4, protocol named (never UDP-Lite)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET6), argMasked(1, sockTypeMask, unix.SOCK_DGRAM), argEq(2, 0)},
		Why: "UDP backends over IPv6 (net.Dialer passes protocol 0)"},
	{Syscall: "socket", Conds: []Cond{argEq(0, unix.AF_INET6), argMasked(1, sockTypeMask, unix.SOCK_DGRAM), argEq(2, unix.IPPROTO_UDP)},
		Why: "UDP backends over IPv6, protocol named (never UDP-Lite)"},
	{Syscall: "setsockopt", Conds: []Cond{argEq(1, unix.SOL_SOCKET), argEq(2, unix.SO_BROADCAST)},
		Why: "net: set on every datagram socket it creates"},
	{Syscall: "sendto", Why: "UDP replies from the listener's socket to each client (WriteToUDPAddrPort)"},
}

// Rules returns the policy the loader compiles: the allow-list, then the
// rules that only a binary built with -race needs. The caller owns the
// returned slice; the Conds slices are shared and must not be modified.
func Rules() []Rule {
	return slices.Concat(baseRules, udpRules, raceRules)
}

// Syscalls returns the sorted, distinct names of the system calls the
// policy allows under some condition (rules answering an errno excluded).
func Syscalls() []string {
	var names []string
	for _, r := range Rules() {
		if r.Errno == 0 && !slices.Contains(names, r.Syscall) {
			names = append(names, r.Syscall)
		}
	}
	slices.Sort(names)
	return names
}

// Decide returns what the policy does with a call of name with args, as
// the loaded filter would: allowed, or the errno it answers. A call no rule
// matches gets the mode's action, reported as allowed false and errno 0.
// It is the reference for the unit tests and for documentation.
func Decide(rules []Rule, name string, args [6]uint64) (allowed bool, errno syscall.Errno) {
	for _, r := range rules {
		if r.Syscall != name || !allHold(r.Conds, args) {
			continue
		}
		if r.Errno != 0 {
			return false, r.Errno
		}
		return true, 0
	}
	return false, 0
}

func allHold(conds []Cond, args [6]uint64) bool {
	for _, c := range conds {
		if !c.Holds(args) {
			return false
		}
	}
	return true
}

// Validate checks a policy: names given, arguments 0-5, known operators,
// masked values inside their masks, a reason for every rule, no name both
// allowed and answered an errno, and at most MaxSyscalls distinct names.
func Validate(rules []Rule) error {
	names := map[string]syscall.Errno{}
	for i, r := range rules {
		where := fmt.Sprintf("sandbox: rule %d (%s)", i, r.Syscall)
		if r.Syscall == "" || strings.TrimSpace(r.Syscall) != r.Syscall {
			return fmt.Errorf("sandbox: rule %d: invalid system call name %q", i, r.Syscall)
		}
		if r.Why == "" {
			return fmt.Errorf("%s: no reason given", where)
		}
		if r.Errno != 0 && len(r.Conds) > 0 {
			return fmt.Errorf("%s: an errno rule takes no condition", where)
		}
		seen := map[uint]bool{}
		for _, c := range r.Conds {
			if c.Arg > 5 {
				return fmt.Errorf("%s: argument %d out of range 0-5", where, c.Arg)
			}
			if seen[c.Arg] {
				return fmt.Errorf("%s: two conditions on argument %d", where, c.Arg)
			}
			seen[c.Arg] = true
			switch c.Op {
			case Equal:
				if c.Mask != 0 {
					return fmt.Errorf("%s: mask on an Equal condition", where)
				}
			case MaskedEqual:
				if c.Value&^c.Mask != 0 {
					return fmt.Errorf("%s: value %#x outside mask %#x: the condition never holds", where, c.Value, c.Mask)
				}
			case EqualPID:
				if c.Value != 0 || c.Mask != 0 {
					return fmt.Errorf("%s: value or mask on an EqualPID condition (Bind sets the value)", where)
				}
			default:
				return fmt.Errorf("%s: unknown operator %d", where, c.Op)
			}
		}
		if prev, ok := names[r.Syscall]; ok && prev != r.Errno {
			return fmt.Errorf("%s: both allowed and answered an errno", where)
		}
		names[r.Syscall] = r.Errno
	}
	if len(names) > MaxSyscalls {
		return fmt.Errorf("sandbox: policy names %d system calls, more than %d", len(names), MaxSyscalls)
	}
	return nil
}
