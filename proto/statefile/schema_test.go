package statefile

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/sozu-go/sozu/proto/command"
)

// protoFieldOrder reads ../command.proto and returns, per top-level message,
// its field names in source order (oneof members included).
func protoFieldOrder(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../command.proto")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msgRE := regexp.MustCompile(`^message\s+(\w+)\s*\{`)
	fieldRE := regexp.MustCompile(`^\s*(?:(?:required|optional|repeated)\s+)?(?:map\s*<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*\d+`)
	out := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := msgRE.FindStringSubmatch(line); m != nil {
			cur = m[1]
			out[cur] = []string{}
			continue
		}
		if strings.HasPrefix(line, "}") {
			cur = ""
			continue
		}
		if m := fieldRE.FindStringSubmatch(line); m != nil && cur != "" {
			out[cur] = append(out[cur], m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeclarationOrder checks that descriptor Fields() order, which the codec
// uses as the JSON key order, is the .proto declaration order.
func TestDeclarationOrder(t *testing.T) {
	src := protoFieldOrder(t)
	msgs := command.File_command_proto.Messages()
	if len(src) != msgs.Len() {
		t.Fatalf("parsed %d messages from command.proto, descriptor has %d", len(src), msgs.Len())
	}
	reordered := 0
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		var names []string
		byNumber := true
		for j := 0; j < md.Fields().Len(); j++ {
			names = append(names, string(md.Fields().Get(j).Name()))
			if j > 0 && md.Fields().Get(j).Number() < md.Fields().Get(j-1).Number() {
				byNumber = false
			}
		}
		if !byNumber {
			reordered++
		}
		if want := src[string(md.Name())]; !slices.Equal(names, want) {
			t.Errorf("%s: Fields() order %v, command.proto order %v", md.Name(), names, want)
		}
	}
	if reordered == 0 {
		t.Log("note: no message declares its fields out of tag order")
	}
}

// TestSchemaAssumptions guards the facts the codec relies on.
func TestSchemaAssumptions(t *testing.T) {
	for name := range defaultWhenMissing {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		fd, ok := d.(protoreflect.FieldDescriptor)
		if err != nil || !ok || !(fd.IsList() || fd.IsMap()) {
			t.Errorf("defaultWhenMissing: %s is not a repeated or map field (%v)", name, err)
		}
	}

	// Where a oneof sits among ordinary fields is only known for messages
	// made of a single oneof; a mixed message needs checking against
	// upstream's output before we rely on "position of the first member".
	msgs := command.File_command_proto.Messages()
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		if md.Oneofs().Len() > 0 && (md.Oneofs().Len() > 1 || md.Oneofs().Get(0).Fields().Len() != md.Fields().Len()) {
			t.Errorf("%s mixes a oneof with other fields: confirm upstream's JSON key order for it", md.FullName())
		}
	}

	// Every field reachable from a record has a supported kind.
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for j := 0; j < md.Fields().Len(); j++ {
			fd := md.Fields().Get(j)
			if fd.IsMap() {
				if fd.MapKey().Kind() != protoreflect.StringKind {
					t.Logf("%s has %s map keys", fd.FullName(), fd.MapKey().Kind())
				}
				fd = fd.MapValue()
			}
			switch fd.Kind() {
			case protoreflect.FloatKind, protoreflect.DoubleKind, protoreflect.GroupKind:
				t.Errorf("%s has unsupported kind %s", fd.FullName(), fd.Kind())
			case protoreflect.MessageKind:
				walk(fd.Message())
			}
		}
	}
	walk((&command.WorkerRequest{}).ProtoReflect().Descriptor())
}
