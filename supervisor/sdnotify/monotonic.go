package sdnotify

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// MonotonicUsec is the MONOTONIC_USEC= field that must accompany
// RELOADING=1 for a Type=notify-reload unit (systemd ≥ 253, sd_notify(3)):
// CLOCK_MONOTONIC now, in microseconds, so that systemd can tell this
// reload from an earlier one.
func MonotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "MONOTONIC_USEC=0" // CLOCK_MONOTONIC always exists on Linux
	}
	return "MONOTONIC_USEC=" + strconv.FormatInt(ts.Sec*1_000_000+ts.Nsec/1_000, 10)
}
