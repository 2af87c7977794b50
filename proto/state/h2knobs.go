package state

import (
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// h2KnobRange is the range of the h2_* listener knob name (docs/protocol.md
// §5.3): at least 1 (0 is not "no limit": a worker would trip on the first
// frame counted), h2_stream_shrink_ratio at least 2,
// h2_max_concurrent_streams at most 10 000 and h2_initial_connection_window
// within RFC 9113's [65535, 2^31-1] (upstream clamps to both at runtime),
// h2_graceful_shutdown_deadline_seconds anything (0: no deadline). ok is
// false for a field that is no h2_* knob.
func h2KnobRange(name string, kind protoreflect.Kind) (lo, hi uint64, ok bool) {
	if !strings.HasPrefix(name, "h2_") {
		return 0, 0, false
	}
	hi = math.MaxUint32
	switch kind {
	case protoreflect.Uint32Kind:
	case protoreflect.Uint64Kind:
		hi = math.MaxUint64
	default:
		return 0, 0, false
	}
	switch name {
	case "h2_graceful_shutdown_deadline_seconds":
		return 0, hi, true
	case "h2_stream_shrink_ratio":
		return 2, hi, true
	case "h2_max_concurrent_streams":
		return 1, 10000, true
	case "h2_initial_connection_window":
		return 65535, 1<<31 - 1, true
	}
	return 1, hi, true
}

// ClampH2Knobs returns m with each h2_* knob stated out of its range
// clamped into it (H2KnobIssues' Use), as upstream's runtime clamps it;
// m itself when none is. Absent knobs stay absent.
func ClampH2Knobs[M proto.Message](m M) M {
	issues := H2KnobIssues(m)
	if len(issues) == 0 {
		return m
	}
	c := proto.Clone(m).(M)
	r := c.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, is := range issues {
		fd := fields.ByName(protoreflect.Name(is.Field))
		v := protoreflect.ValueOfUint64(is.Use)
		if fd.Kind() == protoreflect.Uint32Kind {
			v = protoreflect.ValueOfUint32(uint32(is.Use))
		}
		r.Set(fd, v)
	}
	return c
}

func knobReason(lo, hi, v uint64) string {
	switch {
	case v >= lo && v <= hi:
		return ""
	case lo > 1 && hi < math.MaxUint32:
		return fmt.Sprintf("must be between %d and %d", lo, hi)
	case v < lo:
		return fmt.Sprintf("must be >= %d", lo)
	default:
		return fmt.Sprintf("must be <= %d", hi)
	}
}

// H2KnobIssue is an h2_* knob stated out of its range.
type H2KnobIssue struct {
	Field  string // the knob, "h2_max_ping_per_window"
	Reason string // "must be >= 1"
	Value  uint64 // as stated
	Use    uint64 // what a worker uses instead (ClampH2Knobs)
}

// H2KnobIssues lists, in declaration order, the h2_* knobs present in m (a
// listener configuration or an update_*_listener patch) that are out of
// range.
func H2KnobIssues(m proto.Message) []H2KnobIssue {
	r := m.ProtoReflect()
	var out []H2KnobIssue
	fields := r.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !r.Has(fd) {
			continue
		}
		if is, bad := h2KnobIssue(fd, r.Get(fd)); bad {
			out = append(out, is)
		}
	}
	return out
}

func h2KnobIssue(fd protoreflect.FieldDescriptor, v protoreflect.Value) (H2KnobIssue, bool) {
	name := string(fd.Name())
	lo, hi, ok := h2KnobRange(name, fd.Kind())
	if !ok {
		return H2KnobIssue{}, false
	}
	n := v.Uint()
	reason := knobReason(lo, hi, n)
	return H2KnobIssue{Field: name, Reason: reason, Value: n, Use: min(max(n, lo), hi)}, reason != ""
}
