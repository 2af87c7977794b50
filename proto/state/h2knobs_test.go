package state

import (
	"math"
	"testing"
)

// TestH2Knob checks each range of docs/protocol.md §5.3 and the value a
// worker uses instead of one out of it (upstream's runtime clamp).
func TestH2Knob(t *testing.T) {
	for _, tt := range []struct {
		name    string
		v       uint64
		reason  string
		clamped uint64
	}{
		{"h2_max_ping_per_window", 0, "must be >= 1", 1},
		{"h2_max_ping_per_window", 7, "", 7},
		{"h2_max_rst_stream_lifetime", 0, "must be >= 1", 1},
		{"h2_max_rst_stream_lifetime", math.MaxUint64, "", math.MaxUint64},
		{"h2_stream_idle_timeout_seconds", 0, "must be >= 1", 1},
		{"h2_stream_shrink_ratio", 1, "must be >= 2", 2},
		{"h2_max_concurrent_streams", 0, "must be >= 1", 1},
		{"h2_max_concurrent_streams", 10001, "must be <= 10000", 10000},
		{"h2_initial_connection_window", 0, "must be between 65535 and 2147483647", 65535},
		{"h2_initial_connection_window", 1 << 31, "must be between 65535 and 2147483647", 1<<31 - 1},
		{"h2_initial_connection_window", 65535, "", 65535},
		{"h2_graceful_shutdown_deadline_seconds", 0, "", 0},
		{"front_timeout", 0, "", 0},
	} {
		reason, clamped := H2Knob(tt.name, tt.v)
		if reason != tt.reason || clamped != tt.clamped {
			t.Errorf("H2Knob(%s, %d) = %q, %d; want %q, %d", tt.name, tt.v, reason, clamped, tt.reason, tt.clamped)
		}
	}
}
