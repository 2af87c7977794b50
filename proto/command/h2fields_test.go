package command

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// h2Fields pins the h2_* fields of the listener messages: name, number
// and type are the wire contract with upstream's CLI and state files
// (docs/protocol.md §3). HttpListenerConfig 13-21 are the numbers
// upstream's doc/h2_mux_internals.md shows; the rest follow the upstream
// 2.1.0 schema this file was written from. A change here breaks the wire.
var h2Fields = map[string]string{
	"HttpListenerConfig": "h2_max_rst_stream_per_window=13 h2_max_ping_per_window=14 h2_max_settings_per_window=15 " +
		"h2_max_empty_data_per_window=16 h2_max_continuation_frames=17 h2_max_glitch_count=18 " +
		"h2_initial_connection_window=19 h2_max_concurrent_streams=20 h2_stream_shrink_ratio=21 " +
		"h2_max_rst_stream_lifetime=22/u64 h2_max_rst_stream_abusive_lifetime=23/u64 h2_max_rst_stream_emitted_lifetime=27/u64 " +
		"h2_max_header_list_size=24 h2_stream_idle_timeout_seconds=25 h2_max_header_table_size=26 " +
		"h2_graceful_shutdown_deadline_seconds=28 h2_max_window_update_stream0_per_window=29 h2_max_header_fields=34",
	"HttpsListenerConfig": "h2_max_rst_stream_per_window=23 h2_max_ping_per_window=24 h2_max_settings_per_window=25 " +
		"h2_max_empty_data_per_window=26 h2_max_continuation_frames=27 h2_max_glitch_count=28 " +
		"h2_initial_connection_window=29 h2_max_concurrent_streams=30 h2_stream_shrink_ratio=31 " +
		"h2_max_rst_stream_lifetime=32/u64 h2_max_rst_stream_abusive_lifetime=33/u64 h2_max_rst_stream_emitted_lifetime=39/u64 " +
		"h2_max_header_list_size=34 h2_stream_idle_timeout_seconds=37 h2_max_header_table_size=38 " +
		"h2_graceful_shutdown_deadline_seconds=40 h2_max_window_update_stream0_per_window=41 h2_max_header_fields=47",
	"UpdateHttpListenerConfig": "h2_max_rst_stream_per_window=20 h2_max_ping_per_window=21 h2_max_settings_per_window=22 " +
		"h2_max_empty_data_per_window=23 h2_max_continuation_frames=24 h2_max_glitch_count=25 " +
		"h2_initial_connection_window=26 h2_max_concurrent_streams=27 h2_stream_shrink_ratio=28 " +
		"h2_max_rst_stream_lifetime=29/u64 h2_max_rst_stream_abusive_lifetime=30/u64 h2_max_rst_stream_emitted_lifetime=31/u64 " +
		"h2_max_header_list_size=32 h2_max_header_table_size=33 h2_stream_idle_timeout_seconds=34 " +
		"h2_graceful_shutdown_deadline_seconds=35 h2_max_window_update_stream0_per_window=36 h2_max_header_fields=41",
	"UpdateHttpsListenerConfig": "h2_max_rst_stream_per_window=20 h2_max_ping_per_window=21 h2_max_settings_per_window=22 " +
		"h2_max_empty_data_per_window=23 h2_max_continuation_frames=24 h2_max_glitch_count=25 " +
		"h2_initial_connection_window=26 h2_max_concurrent_streams=27 h2_stream_shrink_ratio=28 " +
		"h2_max_rst_stream_lifetime=29/u64 h2_max_rst_stream_abusive_lifetime=30/u64 h2_max_rst_stream_emitted_lifetime=31/u64 " +
		"h2_max_header_list_size=32 h2_max_header_table_size=33 h2_stream_idle_timeout_seconds=34 " +
		"h2_graceful_shutdown_deadline_seconds=35 h2_max_window_update_stream0_per_window=36 h2_max_header_fields=42",
}

// TestH2FieldsWire checks each message's h2_* fields against h2Fields
// (no more, no fewer; optional uint32, or uint64 for the lifetimes), then
// sets each to a distinct value and checks that it goes on the wire under
// its number and comes back.
func TestH2FieldsWire(t *testing.T) {
	for _, m := range []proto.Message{&HttpListenerConfig{}, &HttpsListenerConfig{}, &UpdateHttpListenerConfig{}, &UpdateHttpsListenerConfig{}} {
		md := m.ProtoReflect().Descriptor()
		name := string(md.Name())
		want := map[string]string{}
		for _, f := range strings.Fields(h2Fields[name]) {
			k, v, _ := strings.Cut(f, "=")
			want[k] = v
		}
		r := m.ProtoReflect()
		var seen int
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			if !strings.HasPrefix(string(fd.Name()), "h2_") {
				continue
			}
			seen++
			kind := ""
			if fd.Kind() == protoreflect.Uint64Kind {
				kind = "/u64"
			} else if fd.Kind() != protoreflect.Uint32Kind {
				kind = "/" + fd.Kind().String()
			}
			got := fmt.Sprintf("%d%s", fd.Number(), kind)
			if want[string(fd.Name())] != got || fd.Cardinality() != protoreflect.Optional {
				t.Errorf("%s.%s = %s (%v), want %q, optional", name, fd.Name(), got, fd.Cardinality(), want[string(fd.Name())])
			}
			if fd.Kind() == protoreflect.Uint64Kind {
				r.Set(fd, protoreflect.ValueOfUint64(uint64(1000+fd.Number())))
			} else {
				r.Set(fd, protoreflect.ValueOfUint32(uint32(1000+fd.Number())))
			}
		}
		if seen != len(want) {
			t.Errorf("%s: %d h2_* fields, want %d", name, seen, len(want))
		}
		b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		onWire := map[protowire.Number]uint64{}
		for rest := b; len(rest) > 0; {
			num, typ, n := protowire.ConsumeTag(rest)
			rest = rest[n:]
			if typ != protowire.VarintType {
				n = protowire.ConsumeFieldValue(num, typ, rest)
				rest = rest[n:]
				continue
			}
			v, n := protowire.ConsumeVarint(rest)
			rest = rest[n:]
			onWire[num] = v
		}
		back := m.ProtoReflect().New().Interface()
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			if !strings.HasPrefix(string(fd.Name()), "h2_") {
				continue
			}
			if v := uint64(1000 + fd.Number()); onWire[fd.Number()] != v || back.ProtoReflect().Get(fd).Uint() != v {
				t.Errorf("%s.%s: on the wire %d, back %d, want %d", name, fd.Name(), onWire[fd.Number()], back.ProtoReflect().Get(fd).Uint(), v)
			}
		}
	}
}
