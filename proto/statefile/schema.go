package statefile

import (
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// defaultWhenMissing lists the repeated and map fields that upstream's
// decoder fills with an empty value when their key is absent (serde
// defaults, docs/protocol.md §4.3). Every other repeated or map field must be
// present. null is refused for all of them.
var defaultWhenMissing = map[protoreflect.FullName]bool{
	"command.Cluster.answers":                    true,
	"command.Cluster.authorized_hashes":          true,
	"command.RequestHttpFrontend.headers":        true,
	"command.HttpListenerConfig.answers":         true,
	"command.HttpsListenerConfig.alpn_protocols": true,
	"command.HttpsListenerConfig.answers":        true,
	"command.RequestUdpFrontend.tags":            true,
}

// slot is one key of a message's JSON object: an ordinary field, or a whole
// oneof.
type slot struct {
	key      string
	field    protoreflect.FieldDescriptor // nil for a oneof
	oneof    protoreflect.OneofDescriptor // nil for a field
	variants map[string]protoreflect.FieldDescriptor
}

// schema is the JSON layout of one message type: its slots in declaration
// order, a oneof sitting where its first member is declared.
type schema struct {
	slots []slot
	byKey map[string]int
}

var schemas sync.Map // protoreflect.FullName → *schema

func schemaOf(md protoreflect.MessageDescriptor) *schema {
	if s, ok := schemas.Load(md.FullName()); ok {
		return s.(*schema)
	}
	s := &schema{byKey: map[string]int{}}
	fields := md.Fields() // declaration order, as protoc records it
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(0) != fd {
				continue // the oneof's slot was added at its first member
			}
			sl := slot{key: string(od.Name()), oneof: od, variants: map[string]protoreflect.FieldDescriptor{}}
			for j := 0; j < od.Fields().Len(); j++ {
				v := od.Fields().Get(j)
				sl.variants[variantKey(v)] = v
			}
			s.byKey[sl.key] = len(s.slots)
			s.slots = append(s.slots, sl)
			continue
		}
		s.byKey[string(fd.Name())] = len(s.slots)
		s.slots = append(s.slots, slot{key: string(fd.Name()), field: fd})
	}
	actual, _ := schemas.LoadOrStore(md.FullName(), s)
	return actual.(*schema)
}

// variantKey is the JSON key of a oneof member: its field name in upper
// case ("add_cluster" → "ADD_CLUSTER", "Logging" → "LOGGING", "v4" → "V4").
func variantKey(fd protoreflect.FieldDescriptor) string {
	return strings.ToUpper(string(fd.Name()))
}

// path locates a value inside a record for error messages, as a linked list
// from the leaf up; it is rendered only when an error occurs.
type path struct {
	up    *path
	name  string // field, oneof or variant key; "" for an index or map key
	index int    // list index, when name == "" and !isKey
	key   string // map key, when isKey
	isKey bool
}

func (p *path) field(name string) *path { return &path{up: p, name: name} }
func (p *path) elem(i int) *path        { return &path{up: p, index: i} }
func (p *path) mapKey(k string) *path   { return &path{up: p, key: k, isKey: true} }

func (p *path) String() string {
	if p == nil {
		return ""
	}
	var parts []*path
	for q := p; q != nil; q = q.up {
		parts = append(parts, q)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		q := parts[i]
		switch {
		case q.isKey:
			b.WriteString("[" + strconv.Quote(q.key) + "]")
		case q.name == "":
			b.WriteString("[" + strconv.Itoa(q.index) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(q.name)
		}
	}
	return b.String()
}
