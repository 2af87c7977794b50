package sandbox

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPolicyValid(t *testing.T) {
	rules := Rules()
	if err := Validate(rules); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rules {
		names[r.Syscall] = true
	}
	if len(names) > MaxSyscalls {
		t.Fatalf("%d system calls, more than %d", len(names), MaxSyscalls)
	}
	t.Logf("%d system calls named, %d allowed: %s", len(names), len(Syscalls()), strings.Join(Syscalls(), " "))
}

// TestPolicyNeverAllows lists calls no rule may allow, whatever the arguments:
// they would let a worker run code, reach files, change identity, escape or
// inspect other processes, or listen.
func TestPolicyNeverAllows(t *testing.T) {
	forbidden := []string{
		"execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
		"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf", "perf_event_open",
		"open", "openat", "openat2", "creat", "unlink", "unlinkat", "rename", "renameat2",
		"mkdirat", "symlinkat", "linkat", "fchmodat", "fchownat", "truncate", "ftruncate",
		"memfd_create", "memfd_secret", "pkey_mprotect", "userfaultfd", "io_uring_setup",
		"io_uring_enter", "setuid", "setgid", "setresuid", "setresgid", "setgroups", "capset",
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"bind", "listen", "socketpair", "sendmsg", "sendmmsg", "kill", "tkill", "keyctl",
		"add_key", "request_key", "seccomp", "getdents64", "reboot", "swapon", "syslog",
		"setrlimit", "prlimit64", "personality", "wait4", "waitid", "pidfd_open", "pidfd_getfd",
		"name_to_handle_at", "open_by_handle_at", "mknodat", "acct", "quotactl",
		// A worker holding its access log file appends only (docs/observability.md).
		"lseek", "pwrite64", "pwritev", "pwritev2", "fallocate", "copy_file_range", "sendfile",
	}
	allowed := Syscalls()
	for _, name := range forbidden {
		if slices.Contains(allowed, name) {
			t.Errorf("policy allows %s", name)
		}
	}
}

// TestDecide checks the argument conditions through the reference
// semantics the loader compiles.
func TestDecide(t *testing.T) {
	const rw = unix.PROT_READ | unix.PROT_WRITE
	thread := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID)
	tests := []struct {
		name    string
		call    string
		args    [6]uint64
		allowed bool
		errno   syscall.Errno
	}{
		{"tcp4 socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC}, true, 0},
		{"tcp6 socket", "socket", [6]uint64{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP}, true, 0},
		{"udp socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_DGRAM}, true, 0},
		{"udp-lite socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE}, false, 0},
		{"setsockopt SO_BROADCAST", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.SO_BROADCAST}, true, 0},
		{"sendto", "sendto", [6]uint64{}, true, 0},
		{"sendmmsg", "sendmmsg", [6]uint64{}, false, 0},
		{"recvmmsg", "recvmmsg", [6]uint64{}, false, 0},
		{"raw socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP}, false, 0},
		{"unix socket", "socket", [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM}, false, 0},
		{"netlink socket", "socket", [6]uint64{unix.AF_NETLINK, unix.SOCK_RAW}, false, 0},
		{"packet socket", "socket", [6]uint64{unix.AF_PACKET, unix.SOCK_STREAM}, false, 0},
		{"thread", "clone", [6]uint64{thread}, true, 0},
		{"fork", "clone", [6]uint64{uint64(unix.SIGCHLD)}, false, 0},
		{"thread in new netns", "clone", [6]uint64{thread | unix.CLONE_NEWNET}, false, 0},
		{"clone3", "clone3", [6]uint64{}, false, unix.ENOSYS},
		{"mmap rw", "mmap", [6]uint64{0, 4096, rw, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS}, true, 0},
		{"mmap none", "mmap", [6]uint64{0, 4096, unix.PROT_NONE}, true, 0},
		{"mmap rx", "mmap", [6]uint64{0, 4096, unix.PROT_READ | unix.PROT_EXEC}, false, 0},
		{"mmap rwx", "mmap", [6]uint64{0, 4096, rw | unix.PROT_EXEC}, false, 0},
		{"mprotect none", "mprotect", [6]uint64{0x1000, 4096, unix.PROT_NONE}, true, 0},
		{"mprotect exec", "mprotect", [6]uint64{0x1000, 4096, unix.PROT_EXEC}, false, 0},
		{"prctl vma name", "prctl", [6]uint64{unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME}, true, 0},
		{"prctl dumpable", "prctl", [6]uint64{unix.PR_SET_DUMPABLE, 1}, false, 0},
		{"prctl seccomp", "prctl", [6]uint64{unix.PR_SET_SECCOMP, 2}, false, 0},
		{"fcntl dupfd cloexec", "fcntl", [6]uint64{3, unix.F_DUPFD_CLOEXEC}, true, 0},
		{"fcntl setfl", "fcntl", [6]uint64{3, unix.F_SETFL, unix.O_NONBLOCK}, true, 0},
		{"fcntl setown", "fcntl", [6]uint64{3, unix.F_SETOWN, 1}, false, 0},
		{"fcntl lock", "fcntl", [6]uint64{3, unix.F_SETLK}, false, 0},
		{"ioctl", "ioctl", [6]uint64{2, unix.TCGETS}, false, unix.ENOTTY},
		{"ioctl tiocsti", "ioctl", [6]uint64{0, unix.TIOCSTI}, false, unix.ENOTTY},
		{"read", "read", [6]uint64{}, true, 0},
		{"recvmsg", "recvmsg", [6]uint64{}, true, 0},
		{"tcp4 socket protocol 0", "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 0}, true, 0},
		{"tcp4 socket IPPROTO_TCP", "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP}, true, 0},
		{"mptcp4 socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}, false, 0},
		{"mptcp6 socket", "socket", [6]uint64{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP}, false, 0},
		{"sctp stream socket", "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP}, false, 0},
		{"udp socket IPPROTO_UDP", "socket", [6]uint64{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDP}, true, 0},
		{"tgkill own thread", "tgkill", [6]uint64{testPID, testPID + 3, uint64(unix.SIGURG)}, true, 0},
		{"tgkill sibling", "tgkill", [6]uint64{testPID + 1, testPID + 1, uint64(unix.SIGKILL)}, false, 0},
		{"tgkill pid 0", "tgkill", [6]uint64{0, 1, uint64(unix.SIGKILL)}, false, 0},
		{"setsockopt TCP_NODELAY", "setsockopt", [6]uint64{7, unix.IPPROTO_TCP, unix.TCP_NODELAY}, true, 0},
		{"setsockopt SO_KEEPALIVE", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.SO_KEEPALIVE}, true, 0},
		{"setsockopt TCP_KEEPIDLE", "setsockopt", [6]uint64{7, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}, true, 0},
		{"setsockopt TCP_KEEPINTVL", "setsockopt", [6]uint64{7, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, true, 0},
		{"setsockopt TCP_KEEPCNT", "setsockopt", [6]uint64{7, unix.IPPROTO_TCP, unix.TCP_KEEPCNT}, true, 0},
		{"setsockopt IPV6_V6ONLY", "setsockopt", [6]uint64{7, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}, true, 0},
		{"setsockopt SO_RCVTIMEO", "setsockopt", [6]uint64{4, unix.SOL_SOCKET, unix.SO_RCVTIMEO}, true, 0},
		{"setsockopt SO_LINGER", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.SO_LINGER}, true, 0},
		{"setsockopt TCP_ULP", "setsockopt", [6]uint64{7, unix.SOL_TCP, unix.TCP_ULP}, false, 0},
		{"setsockopt TCP_CONGESTION", "setsockopt", [6]uint64{7, unix.SOL_TCP, unix.TCP_CONGESTION}, false, 0},
		{"setsockopt SO_REUSEPORT", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.SO_REUSEPORT}, false, 0},
		{"setsockopt SO_BINDTODEVICE", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.SO_BINDTODEVICE}, false, 0},
		{"setsockopt TCP_NODELAY number at SOL_SOCKET", "setsockopt", [6]uint64{7, unix.SOL_SOCKET, unix.TCP_NODELAY}, false, 0},
		{"execve", "execve", [6]uint64{}, false, 0},
		{"bind", "bind", [6]uint64{}, false, 0},
		{"openat", "openat", [6]uint64{}, false, 0},
	}
	rules := Bind(Rules(), testPID)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, errno := Decide(rules, tt.call, tt.args)
			if allowed != tt.allowed || errno != tt.errno {
				t.Errorf("Decide(%s %#x) = %v, %v; want %v, %v", tt.call, tt.args[:3], allowed, errno, tt.allowed, tt.errno)
			}
		})
	}
}

// testPID is the pid TestDecide binds the policy to.
const testPID = 4242

// TestBind: the unbound table allows no tgkill; bound, only to the pid's
// thread group; Bind leaves the table alone.
func TestBind(t *testing.T) {
	own := [6]uint64{testPID, testPID, uint64(unix.SIGURG)}
	if ok, _ := Decide(Rules(), "tgkill", own); ok {
		t.Error("the unbound policy allows tgkill")
	}
	bound := Bind(Rules(), testPID)
	if ok, _ := Decide(bound, "tgkill", own); !ok {
		t.Error("the bound policy denies tgkill to its own pid")
	}
	if ok, _ := Decide(Bind(Rules(), testPID+1), "tgkill", own); ok {
		t.Error("the policy bound to another pid allows tgkill to this one")
	}
	for _, r := range baseRules {
		for _, c := range r.Conds {
			if c.Op == EqualPID && (c.Value != 0 || c.Mask != 0) {
				t.Errorf("Bind modified the table: %s %+v", r.Syscall, c)
			}
		}
	}
	if err := Validate(bound); err != nil {
		t.Error(err)
	}
}

// TestUDPRules: the policy lets a worker open UDP sockets (worker/udp),
// never UDP-Lite nor a raw or packet datagram socket.
func TestUDPRules(t *testing.T) {
	for _, args := range [][6]uint64{
		{unix.AF_INET, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, 0},
		{unix.AF_INET6, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK, unix.IPPROTO_UDP},
	} {
		if ok, _ := Decide(Rules(), "socket", args); !ok {
			t.Errorf("the policy denies socket %#x", args[:3])
		}
	}
	for _, args := range [][6]uint64{
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE},
		{unix.AF_INET6, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, unix.IPPROTO_UDPLITE},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP},
		{unix.AF_PACKET, unix.SOCK_DGRAM, 0},
	} {
		if ok, _ := Decide(Rules(), "socket", args); ok {
			t.Errorf("the policy allows socket %#x", args[:3])
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{Syscall: "read", Why: "test"}
	tests := []struct {
		name  string
		rules []Rule
		want  string // "" = valid
	}{
		{"ok", []Rule{ok}, ""},
		{"no name", []Rule{{Why: "x"}}, `rule 0: invalid system call name ""`},
		{"no reason", []Rule{{Syscall: "read"}}, "rule 0 (read): no reason given"},
		{"arg range", []Rule{{Syscall: "read", Why: "x", Conds: []Cond{{Arg: 6, Op: Equal}}}}, "argument 6 out of range"},
		{"two conds one arg", []Rule{{Syscall: "read", Why: "x", Conds: []Cond{argEq(0, 1), argEq(0, 2)}}}, "two conditions on argument 0"},
		{"bad op", []Rule{{Syscall: "read", Why: "x", Conds: []Cond{{Arg: 0}}}}, "unknown operator 0"},
		{"mask on equal", []Rule{{Syscall: "read", Why: "x", Conds: []Cond{{Arg: 0, Op: Equal, Mask: 1}}}}, "mask on an Equal condition"},
		{"value on EqualPID", []Rule{{Syscall: "tgkill", Why: "x", Conds: []Cond{{Arg: 0, Op: EqualPID, Value: 1}}}}, "value or mask on an EqualPID condition"},
		{"EqualPID", []Rule{{Syscall: "tgkill", Why: "x", Conds: []Cond{argPID(0)}}}, ""},
		{"value outside mask", []Rule{{Syscall: "read", Why: "x", Conds: []Cond{argMasked(0, 1, 2)}}}, "value 0x2 outside mask 0x1"},
		{"errno with cond", []Rule{{Syscall: "ioctl", Why: "x", Errno: unix.ENOTTY, Conds: []Cond{argEq(0, 1)}}}, "an errno rule takes no condition"},
		{"allowed and errno", []Rule{ok, {Syscall: "read", Why: "x", Errno: unix.EPERM}}, "rule 1 (read): both allowed and answered an errno"},
		{"too many", manyRules(MaxSyscalls + 1), "policy names 61 system calls, more than 60"},
		{"just enough", manyRules(MaxSyscalls), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.rules)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func manyRules(n int) []Rule {
	var rs []Rule
	for i := range n {
		rs = append(rs, Rule{Syscall: "call" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Why: "x"})
	}
	return rs
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
		err  string
	}{
		{"", ModeKill, ""},
		{"kill", ModeKill, ""},
		{" Errno ", ModeErrno, ""},
		{"OFF", ModeOff, ""},
		{"log", "", `sandbox: invalid mode "log": want kill, errno or off`},
	}
	for _, tt := range tests {
		var m Mode
		err := m.UnmarshalText([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("UnmarshalText(%q) = %v; want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || m != tt.want {
			t.Errorf("UnmarshalText(%q) = %q, %v; want %q", tt.in, m, err, tt.want)
		}
	}
}

// TestDocListsPolicy keeps docs/sandbox.md in step with the table: every
// call the policy names has a row there (gettimeofday included, for -race).
func TestDocListsPolicy(t *testing.T) {
	doc, err := os.ReadFile("../docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Concat(baseRules, udpRules, []Rule{{Syscall: "gettimeofday"}})
	for _, r := range names {
		if !strings.Contains(string(doc), "| `"+r.Syscall+"` |") {
			t.Errorf("docs/sandbox.md has no row for %s", r.Syscall)
		}
	}
}
