package statefile

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// readAll decodes every record of a state file, failing the test on error.
func readAll(t *testing.T, data []byte) []*command.WorkerRequest {
	t.Helper()
	d := NewDecoder(bytes.NewReader(data))
	var out []*command.WorkerRequest
	for {
		m, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(out), err)
		}
		out = append(out, m)
	}
}

// writeAll encodes records into a state file.
func writeAll(t *testing.T, recs []*command.WorkerRequest) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for _, r := range recs {
		if err := e.Encode(r); err != nil {
			t.Fatalf("encoding %s: %v", r.GetId(), err)
		}
	}
	return buf.Bytes()
}

// TestUpstreamExamples decodes the records of docs/protocol.md §4.2 (upstream's
// output format) and checks that re-encoding gives the same bytes.
func TestUpstreamExamples(t *testing.T) {
	data, err := os.ReadFile("testdata/upstream_examples.state")
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, data)
	if len(recs) != 5 {
		t.Fatalf("read %d records, want 5", len(recs))
	}
	if got := writeAll(t, recs); !bytes.Equal(got, data) {
		t.Fatalf("re-encoded file differs:\n got %q\nwant %q", got, data)
	}
	// Spot-check decoded values against the contract's explanations.
	be := recs[4].GetContent().GetAddBackend()
	if a := be.GetAddress().GetIp().Netip().String(); a != "10.0.0.10" || be.GetAddress().GetPort() != 8000 {
		t.Errorf("ADD_BACKEND address = %s:%d, want 10.0.0.10:8000", a, be.GetAddress().GetPort())
	}
	fe := recs[3].GetContent().GetAddHttpFrontend()
	if fe.GetPosition() != command.RulePosition_TREE || fe.GetTags()["owner"] != "team-a" || fe.GetHeaders()[0].GetVal() != "prod" {
		t.Errorf("ADD_HTTP_FRONTEND decoded wrongly: %v", fe)
	}
	if fe.Method != nil || fe.Redirect != nil {
		t.Errorf("null optional fields decoded as set: %v", fe)
	}
}

// TestGoldenAllVariants encodes one record of every Request variant, filled
// with non-trivial values, and compares with testdata/all_variants.state
// (rewrite with -update). The golden file must also decode to the same
// messages.
func TestGoldenAllVariants(t *testing.T) {
	recs := allVariants()
	got := writeAll(t, recs)
	golden := filepath.Join("testdata", "all_variants.state")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte(Separator)), bytes.Split(want, []byte(Separator))
		for i := range min(len(gl), len(wl)) {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("record %d differs from %s (run go test -update if intended):\n got %s\nwant %s", i, golden, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d records, want %d", golden, len(gl)-1, len(wl)-1)
	}
	back := readAll(t, want)
	if len(back) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(back), len(recs))
	}
	for i := range recs {
		if !proto.Equal(back[i], recs[i]) {
			t.Errorf("record %d decodes to\n%v\nwant\n%v", i, back[i], recs[i])
		}
	}
	checkCoverage(t, recs)
}

// allVariants returns one record per Request variant, in field order.
func allVariants() []*command.WorkerRequest {
	f := &filler{}
	oneof := (&command.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("request_type")
	var recs []*command.WorkerRequest
	for i := 0; i < oneof.Fields().Len(); i++ {
		req := &command.Request{}
		f.set(req.ProtoReflect(), oneof.Fields().Get(i), 0)
		recs = append(recs, &command.WorkerRequest{Id: proto.String(fmt.Sprintf("SAVE-%d", i)), Content: req})
	}
	return recs
}

// filler sets fields to deterministic, varied values: extreme integers,
// strings needing escapes and non-ASCII text, two-entry maps whose insertion
// order differs from sorted order, every enum value in turn, both IpAddress
// variants, and a quarter of the optional scalars left unset.
type filler struct{ n int }

func (f *filler) next() int { f.n++; return f.n }

var fillStrings = []string{
	"shop-%d",
	"é✓ 😀 %d",
	"quote\" back\\slash / %d",
	"ctl \n\r\t\b\f \x00\x01\x1f\x7f %d",
}

func (f *filler) fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil {
			if od.Fields().Get(0) == fd {
				f.set(m, od.Fields().Get(f.next()%od.Fields().Len()), depth)
			}
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					el := l.NewElement()
					f.fill(el.Message(), depth+1)
					l.Append(el)
				} else {
					l.Append(f.scalar(fd))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for _, k := range []string{"zeta-%d", "alpha-%d"} {
				key := protoreflect.ValueOfString(fmt.Sprintf(k, f.next())).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v := mp.NewValue()
					f.fill(v.Message(), depth+1)
					mp.Set(key, v)
				} else {
					mp.Set(key, f.scalar(fd.MapValue()))
				}
			}
		case fd.Cardinality() == protoreflect.Required:
			f.set(m, fd, depth)
		case fd.Kind() == protoreflect.MessageKind && depth > 6,
			fd.Kind() != protoreflect.MessageKind && f.next()%4 == 0:
			// leave this optional field unset: null
		default:
			f.set(m, fd, depth)
		}
	}
}

func (f *filler) set(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	if fd.Kind() == protoreflect.MessageKind {
		f.fill(m.Mutable(fd).Message(), depth+1)
		return
	}
	m.Set(fd, f.scalar(fd))
}

func (f *filler) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	n := f.next()
	hi := n%2 == 0
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(hi)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(n % vals.Len()).Number())
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf(fillStrings[n%len(fillStrings)], n))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, 1, 127, 128, 255, byte(n)})
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if hi {
			return protoreflect.ValueOfInt32(math.MaxInt32 - int32(n))
		}
		return protoreflect.ValueOfInt32(math.MinInt32 + int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if hi {
			return protoreflect.ValueOfInt64(math.MaxInt64 - int64(n))
		}
		return protoreflect.ValueOfInt64(math.MinInt64 + int64(n))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if hi {
			return protoreflect.ValueOfUint32(math.MaxUint32 - uint32(n))
		}
		return protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if hi {
			return protoreflect.ValueOfUint64(math.MaxUint64 - uint64(n))
		}
		return protoreflect.ValueOfUint64(uint64(n))
	}
	panic("filler: unsupported kind " + fd.Kind().String())
}

// checkCoverage asserts that the generated records exercise what the golden
// file is meant to show.
func checkCoverage(t *testing.T, recs []*command.WorkerRequest) {
	t.Helper()
	seen := map[string]bool{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			switch {
			case fd.IsMap():
				if m.Get(fd).Map().Len() >= 2 {
					seen["map with 2+ keys"] = true
				}
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					m.Get(fd).Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
						walk(v.Message())
						return true
					})
				}
			case fd.IsList():
				if fd.Kind() == protoreflect.MessageKind {
					for j := 0; j < m.Get(fd).List().Len(); j++ {
						walk(m.Get(fd).List().Get(j).Message())
					}
				}
			case !m.Has(fd):
				if fd.ContainingOneof() == nil {
					seen["null optional"] = true
				}
			case fd.Kind() == protoreflect.BytesKind:
				seen["bytes"] = true
			case fd.FullName() == "command.IpAddress.v6":
				seen["IPv6"] = true
			case fd.FullName() == "command.IpAddress.v4":
				seen["IPv4"] = true
			case fd.Kind() == protoreflect.MessageKind:
				walk(m.Get(fd).Message())
			}
		}
	}
	for _, r := range recs {
		walk(r.ProtoReflect())
	}
	for _, want := range []string{"map with 2+ keys", "null optional", "bytes", "IPv6", "IPv4"} {
		if !seen[want] {
			t.Errorf("golden records contain no %s", want)
		}
	}
}

// TestStability checks decode → encode → decode on both golden files: the
// second decode equals the first and the second encoding equals the first.
func TestStability(t *testing.T) {
	for _, name := range []string{"upstream_examples.state", "all_variants.state"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			first := readAll(t, data)
			enc1 := writeAll(t, first)
			second := readAll(t, enc1)
			if len(first) != len(second) {
				t.Fatalf("%d records, then %d", len(first), len(second))
			}
			for i := range first {
				if !proto.Equal(first[i], second[i]) {
					t.Errorf("record %d changed:\n%v\n%v", i, first[i], second[i])
				}
			}
			if enc2 := writeAll(t, second); !bytes.Equal(enc1, enc2) {
				t.Errorf("second encoding differs from the first")
			}
		})
	}
}
