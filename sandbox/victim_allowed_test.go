//go:build linux && cgo

package sandbox

import (
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// allowedProbes are calls a worker makes with arguments the policy narrows
// (tgkill, socket, setsockopt): confined in kill mode, each must succeed.
// They are the other half of the denied probes of the same calls.
var allowedProbes = []probe{
	{name: "tgkill self", call: func(*probeState) (uintptr, syscall.Errno) {
		return sys(unix.SYS_TGKILL, unix.Getpid(), unix.Gettid(), 0)
	}},
	{name: "socket AF_INET SOCK_STREAM 0", call: socketProbe(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)},
	{name: "socket AF_INET SOCK_STREAM IPPROTO_TCP", call: socketProbe(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, unix.IPPROTO_TCP)},
	{name: "socket AF_INET6 SOCK_STREAM 0", call: socketProbe(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)},
	{name: "socket AF_INET6 SOCK_STREAM IPPROTO_TCP", call: socketProbe(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, unix.IPPROTO_TCP)},
	{name: "setsockopt SO_KEEPALIVE", call: sockoptProbe(false, unix.SOL_SOCKET, unix.SO_KEEPALIVE)},
	{name: "setsockopt SO_RCVTIMEO", call: sockoptProbe(false, unix.SOL_SOCKET, unix.SO_RCVTIMEO)},
	{name: "setsockopt SO_LINGER", call: sockoptProbe(false, unix.SOL_SOCKET, unix.SO_LINGER)},
	{name: "setsockopt TCP_NODELAY", call: sockoptProbe(false, unix.IPPROTO_TCP, unix.TCP_NODELAY)},
	{name: "setsockopt TCP_KEEPIDLE", call: sockoptProbe(false, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)},
	{name: "setsockopt TCP_KEEPINTVL", call: sockoptProbe(false, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)},
	{name: "setsockopt TCP_KEEPCNT", call: sockoptProbe(false, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)},
	{name: "setsockopt IPV6_V6ONLY", call: sockoptProbe(true, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)},
}

// sockoptProbe reads an option with getsockopt (allowed without
// condition) and sets the same value back, on the IPv4 or IPv6 socket.
func sockoptProbe(v6 bool, level, opt int) func(*probeState) (uintptr, syscall.Errno) {
	return func(s *probeState) (uintptr, syscall.Errno) {
		fd := s.sock
		if v6 {
			fd = s.sock6
		}
		var buf [64]byte
		n := uint32(len(buf))
		if r, e := sys(unix.SYS_GETSOCKOPT, fd, level, opt, unsafe.Pointer(&buf[0]), unsafe.Pointer(&n)); e != 0 {
			return r, e
		}
		return sys(unix.SYS_SETSOCKOPT, fd, level, opt, unsafe.Pointer(&buf[0]), int(n))
	}
}

// TestVictimAllowed: what the policy narrows by argument still works, in
// kill mode, for the arguments the worker uses.
func TestVictimAllowed(t *testing.T) {
	requireRoot(t)
	for _, p := range allowedProbes {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			if got := runVictim(t, p.name, ModeKill, p.root); got.signal != 0 || got.code != 0 || !strings.HasPrefix(got.out, "errno=0 ") {
				t.Errorf("kill mode: %v; want errno=0", got)
			}
		})
	}
}
