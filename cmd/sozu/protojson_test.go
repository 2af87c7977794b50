package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// marshalProto writes what protojson writes, but for 64-bit integers,
// which are numbers: every render case's content reads back equal through
// protojson, whose reader takes numbers too; its fields and keys come in
// protojson's order; and no 64-bit value is a string.
func TestMarshalProtoIsProtojsonWithNumbers(t *testing.T) {
	for _, tc := range renderCases() {
		c := tc.resp.GetContent()
		if c == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			ours, err := marshalProto(c.ProtoReflect())
			if err != nil {
				t.Fatal(err)
			}
			var back command.ResponseContent
			if err := protojson.Unmarshal(ours, &back); err != nil {
				t.Fatalf("protojson cannot read it back: %v\n%s", err, ours)
			}
			if !proto.Equal(&back, c) {
				t.Fatalf("read back differs:\n%v\nwant\n%v", &back, c)
			}
			theirs, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			a, b := tokens(t, ours, false), tokens(t, theirs, true)
			if len(a) != len(b) {
				t.Fatalf("%d tokens, protojson %d:\n%v\n%v", len(a), len(b), a, b)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("token %d: %v, protojson (its digit strings as numbers) %v\n%s", i, a[i], b[i], ours)
				}
			}
			if n := count64(c.ProtoReflect()); n > 0 && bytes.Equal(ours, theirs) {
				t.Errorf("%d 64-bit values, yet the same bytes as protojson's", n)
			}
		})
	}
}

// tokens lists the JSON tokens of doc in order, numbers as json.Number;
// with digits, a value (not a key) that is a string of digits, as
// protojson writes a 64-bit integer, is listed as the number it holds.
func tokens(t *testing.T, doc []byte, digits bool) []any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []any
	type level struct{ object, key bool }
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].key
		if len(stack) > 0 && stack[len(stack)-1].object {
			if d, ok := tok.(json.Delim); !ok || (d != '}' && d != ']') {
				stack[len(stack)-1].key = !isKey
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, level{object: true, key: true})
			case '[':
				stack = append(stack, level{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if digits && !isKey && isDigits(v) {
				tok = json.Number(v)
			}
		}
		out = append(out, tok)
	}
}

func isDigits(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// count64 counts the 64-bit integer values set in m and its messages.
func count64(m protoreflect.Message) int {
	n := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		is64 := func(fd protoreflect.FieldDescriptor) bool {
			switch fd.Kind() {
			case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind,
				protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
				return true
			}
			return false
		}
		switch {
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Message() != nil {
					n += count64(mv.Message())
				} else if is64(fd.MapValue()) {
					n++
				}
				return true
			})
		case fd.IsList():
			for i := range v.List().Len() {
				if fd.Message() != nil {
					n += count64(v.List().Get(i).Message())
				} else if is64(fd) {
					n++
				}
			}
		case fd.Message() != nil:
			n += count64(v.Message())
		case is64(fd):
			n++
		}
		return true
	})
	return n
}

// A string that is not UTF-8 (proto2 does not check them) has no JSON
// form: the error names the field, where protojson's named none.
func TestMarshalProtoInvalidUTF8(t *testing.T) {
	for name, c := range map[string]*command.ResponseContent{
		"map key": {ContentType: &command.ResponseContent_ClusterHashes{ClusterHashes: &command.ClusterHashes{Map: map[string]uint64{"a\xff": 1}}}},
		"string":  {ContentType: &command.ResponseContent_Event{Event: &command.Event{ClusterId: proto.String("a\xff")}}},
	} {
		_, err := marshalProto(c.ProtoReflect())
		if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := renderJSON(&command.Response{Status: command.ResponseStatus_OK.Enum(), Content: c}); err == nil {
			t.Errorf("%s: renderJSON took it", name)
		}
	}
}

// Floats are written as protojson writes them (no message of ours has
// one yet: the rule is checked on its own).
func TestAppendFloat(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		bits int
		want string
	}{{1e6, 64, "1000000"}, {0.5, 64, "0.5"}, {1e-7, 64, "1e-7"}, {1e21, 64, "1e+21"}, {-2.5e-10, 64, "-2.5e-10"}, {0, 64, "0"}, {0.1, 32, "0.1"}} {
		if got := string(appendFloat(nil, tt.f, tt.bits)); got != tt.want {
			t.Errorf("appendFloat(%v, %d) = %s, want %s", tt.f, tt.bits, got, tt.want)
		}
	}
}
