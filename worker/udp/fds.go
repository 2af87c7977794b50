package udp

import (
	"sync/atomic"
	"syscall"
)

// fdSharePercent is the share of the process's open-file limit
// (RLIMIT_NOFILE, soft) that the flows of all UDP listeners together may
// hold: each flow is a connected socket, and a flood of new flows must not
// take the descriptors HTTP and TCP connections, health probes and log
// files need (upstream clamps max_flows to about 70 % of that limit:
// lib/src/protocol/udp/LIFECYCLE.md, "Hardening notes").
const fdSharePercent = 70

// sockets counts the flows' backend sockets open in this process, every
// listener's.
var sockets atomic.Int64

// fdLimit is the soft open-file limit, read once when the process starts
// (after the runtime raised it to the hard limit, and before the worker's
// seccomp filter, which allows no getrlimit); 0 when it cannot be read or
// is unlimited: no bound then but max_flows.
var fdLimit atomic.Int64

func init() { fdLimit.Store(readFDLimit()) }

func readFDLimit() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 0
	}
	return int64(rl.Cur)
}

// takeSocket reserves a descriptor for a new flow's socket; false when
// the flows hold their share of the limit already.
func takeSocket() bool {
	n := sockets.Add(1)
	if lim := fdLimit.Load(); lim > 0 && n > lim*fdSharePercent/100 {
		sockets.Add(-1)
		return false
	}
	return true
}

// releaseSocket returns a descriptor taken by takeSocket.
func releaseSocket() { sockets.Add(-1) }
