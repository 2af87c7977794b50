package state

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// TestH2KnobRanges checks each range of docs/protocol.md §5.3, and the
// value a worker uses instead of one out of it (upstream's runtime
// clamp), on an HTTPS listener configuration stating the one knob.
func TestH2KnobRanges(t *testing.T) {
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
		{"h2_initial_connection_window", math.MaxUint32, "must be between 65535 and 2147483647", 1<<31 - 1},
		{"h2_initial_connection_window", 65535, "", 65535},
		{"h2_graceful_shutdown_deadline_seconds", 0, "", 0},
		{"front_timeout", 0, "", 0},
	} {
		m := &command.HttpsListenerConfig{}
		fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(tt.name))
		if fd.Kind() == protoreflect.Uint32Kind {
			m.ProtoReflect().Set(fd, protoreflect.ValueOfUint32(uint32(tt.v)))
		} else {
			m.ProtoReflect().Set(fd, protoreflect.ValueOfUint64(tt.v))
		}
		before := proto.Clone(m)
		reason := ""
		if is := H2KnobIssues(m); len(is) > 0 {
			reason = is[0].Reason
		}
		c := ClampH2Knobs(m)
		if got := c.ProtoReflect().Get(fd).Uint(); reason != tt.reason || got != tt.clamped {
			t.Errorf("%s = %d: %q, clamped %d; want %q, %d", tt.name, tt.v, reason, got, tt.reason, tt.clamped)
		}
		if !proto.Equal(m, before) {
			t.Errorf("%s = %d: ClampH2Knobs changed its argument", tt.name, tt.v)
		}
		if c.H2MaxHeaderFields != nil {
			t.Errorf("%s = %d: an absent knob became present", tt.name, tt.v)
		}
	}
}
