package frame

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Decode cost (docs/protocol.md §1.3). Protobuf lets a small payload
// decode into a much larger message: an empty element of a repeated
// message field is two bytes on the wire and a Go struct of 64 bytes or
// more, plus its slot in a slice grown by appending; switching between
// the members of a oneof allocates a new one each time. A 2 MB frame of
// empty headers decodes into some 110 MB. DecodeCost reads the wire form
// without decoding it and charges each field what the Go decoder
// allocates for it, at least; a Reader with a cost limit refuses a frame
// whose charge exceeds CostFactor times its payload plus CostSlack, before
// decoding it.
const (
	// CostFactor is how many bytes per payload byte a bounded Reader lets
	// a message take in memory once decoded. Text fields (certificates,
	// answer templates) cost about 1: their bytes are copied once. The
	// supervisor's handling of a request then costs a few times the
	// decoded message (the redacted copy its audit fingerprint is taken
	// of, the encoding for each worker): 2 keeps the whole under some 8
	// times the frame (docs/protocol.md §1.3).
	CostFactor = 2
	// CostSlack is the cost a payload may take beyond CostFactor times its
	// size: small frames decode into structs larger than themselves (an
	// add_backend of 60 bytes into some 500), and so do lists of short
	// strings, some 7 times (a query_metrics naming 10 000 clusters: 150
	// KB on the wire, about 1.1 MB charged). What the bound guards is the
	// supervisor's memory, not a ratio: any frame may take 1 MiB, and no
	// frame more than 2 times its size beyond that.
	CostSlack = 1 << 20

	// Charges, bytes. A slice grown by appending allocates, in all, up to
	// some 5 times its final size (Go grows large slices by 1.25); a
	// repeated field and the unknown fields of a message are such slices.
	growth       = 6
	ptrSize      = 8
	strHeader    = 16
	oneofWrapper = 16  // the wrapper struct of a oneof member
	mapEntry     = 256 // a map entry's share of its buckets, with their growth (measured: 228 for 1 000 tags)
	maxCostDepth = 100 // deeper nesting is refused (the schema nests far less)
)

// CostError reports a payload that would take more memory to decode than
// the Reader allows. Field is the field (path from the message decoded,
// snake_case, as in command.proto) that costs most, Count its
// occurrences.
type CostError struct {
	Size  int    // payload bytes
	Cost  uint64 // estimated bytes the decoder would allocate (so far)
	Limit uint64 // CostFactor × Size + CostSlack
	Field string
	Count int
}

func (e *CostError) Error() string {
	if e.Field == "" { // nested deeper than maxCostDepth
		return fmt.Sprintf("the %d-byte payload nests messages more than %d deep", e.Size, maxCostDepth)
	}
	return fmt.Sprintf("decoding the %d-byte payload would take about %d bytes, more than %d (%d × the payload + %d): field %s occurs %d times",
		e.Size, e.Cost, e.Limit, CostFactor, CostSlack, e.Field, e.Count)
}

// CostLimit is the decode cost a payload of n bytes may take.
func CostLimit(n int) uint64 { return CostFactor*uint64(n) + CostSlack }

// DecodeCost estimates the bytes the Go protobuf decoder allocates to
// decode b as a message of type md: at least as much, for every field of
// every message, give or take a few hundred bytes of fixed cost (checked
// by TestDecodeCostCoversDecoder). It returns a *CostError when the
// estimate exceeds limit (0: no limit) or messages nest deeper than the
// schema does.
// The whole payload is read, so that the error counts every occurrence;
// a payload that is not valid wire format is charged up to the fault (the
// decoder then refuses it). It allocates only per distinct field, never
// per occurrence.
func DecodeCost(md protoreflect.MessageDescriptor, b []byte, limit uint64) (uint64, error) {
	w := &costWalk{limit: limit, size: len(b), tally: map[tallyKey]*tally{}}
	w.total = structSize(md)
	w.message(md, b, 0)
	if w.tooDeep || (limit > 0 && w.total > limit) {
		return w.total, w.err()
	}
	return w.total, nil
}

type tallyKey struct {
	md  protoreflect.MessageDescriptor
	num protowire.Number
}

type tally struct {
	path  string
	count int
	cost  uint64
}

type costWalk struct {
	limit   uint64
	size    int
	total   uint64
	tooDeep bool
	tally   map[tallyKey]*tally
	path    []protoreflect.FieldDescriptor // the fields leading to the message being read
}

func (w *costWalk) err() error {
	var worst *tally
	for _, t := range w.tally {
		if worst == nil || t.cost > worst.cost || (t.cost == worst.cost && t.path < worst.path) {
			worst = t
		}
	}
	e := &CostError{Size: w.size, Cost: w.total, Limit: w.limit}
	if worst != nil && !w.tooDeep {
		e.Field, e.Count = worst.path, worst.count
	}
	return e
}

// charge adds c for one occurrence of field num of md (fd nil: unknown).
func (w *costWalk) charge(md protoreflect.MessageDescriptor, num protowire.Number, fd protoreflect.FieldDescriptor, c uint64) {
	w.total += c
	k := tallyKey{md, num}
	t := w.tally[k]
	if t == nil {
		t = &tally{path: w.pathOf(fd, num)}
		w.tally[k] = t
	}
	t.count++
	t.cost += c
}

func (w *costWalk) pathOf(fd protoreflect.FieldDescriptor, num protowire.Number) string {
	var parts []string
	for _, p := range w.path {
		parts = append(parts, string(p.Name()))
	}
	if fd != nil {
		parts = append(parts, string(fd.Name()))
	} else {
		parts = append(parts, fmt.Sprintf("<unknown field %d>", num))
	}
	return strings.Join(parts, ".")
}

// nested charges the fields of b, a message of type md reached by fd.
func (w *costWalk) nested(fd protoreflect.FieldDescriptor, md protoreflect.MessageDescriptor, b []byte, depth int) {
	w.path = append(w.path, fd)
	w.message(md, b, depth+1)
	w.path = w.path[:len(w.path)-1]
}

// message charges the fields of b, a message of type md reached by w.path.
func (w *costWalk) message(md protoreflect.MessageDescriptor, b []byte, depth int) {
	if depth > maxCostDepth {
		w.tooDeep = true
		return
	}
	fields := md.Fields()
	for len(b) > 0 && !w.tooDeep {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return
		}
		val, whole := b[n:n+m], b[:n+m]
		b = b[n+m:]
		fd := fields.ByNumber(num)
		if fd == nil || !wireMatches(fd, typ) {
			// Kept as bytes in the message's unknown fields.
			w.charge(md, num, nil, growth*uint64(len(whole)))
			continue
		}
		w.field(md, fd, typ, val, depth)
	}
}

func (w *costWalk) field(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, typ protowire.Type, val []byte, depth int) {
	var c uint64
	if fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic() {
		c += oneofWrapper
	}
	switch k := fd.Kind(); {
	case fd.IsMap():
		c += mapEntry
		w.charge(md, fd.Number(), fd, c)
		inner, _ := protowire.ConsumeBytes(val)
		w.nested(fd, fd.Message(), inner, depth)
	case k == protoreflect.MessageKind || k == protoreflect.GroupKind:
		c += structSize(fd.Message())
		if fd.IsList() {
			c += growth * ptrSize
		}
		w.charge(md, fd.Number(), fd, c)
		var inner []byte
		if typ == protowire.StartGroupType {
			inner, _ = protowire.ConsumeGroup(fd.Number(), val)
		} else {
			inner, _ = protowire.ConsumeBytes(val)
		}
		w.nested(fd, fd.Message(), inner, depth)
	case k == protoreflect.StringKind || k == protoreflect.BytesKind:
		v, _ := protowire.ConsumeBytes(val)
		c += roundUp(uint64(len(v)))
		if fd.IsList() {
			c += growth * strHeader
		}
		w.charge(md, fd.Number(), fd, c)
	default: // scalars
		elem := scalarSize(k)
		switch {
		case fd.IsList() && typ == protowire.BytesType: // packed
			v, _ := protowire.ConsumeBytes(val)
			c += growth * elem * packedCount(k, v)
		case fd.IsList():
			c += growth * elem
		case fd.HasPresence():
			c += ptrSize // proto2 optional scalars are pointers
		}
		w.charge(md, fd.Number(), fd, c)
	}
}

// wireMatches reports whether the Go decoder takes wire type typ for fd
// (otherwise it keeps the field as unknown).
func wireMatches(fd protoreflect.FieldDescriptor, typ protowire.Type) bool {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.StringKind, protoreflect.BytesKind:
		return typ == protowire.BytesType
	case protoreflect.GroupKind:
		return typ == protowire.StartGroupType
	}
	want := protowire.VarintType
	switch fd.Kind() {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		want = protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		want = protowire.Fixed64Type
	}
	return typ == want || (fd.IsList() && typ == protowire.BytesType)
}

func scalarSize(k protoreflect.Kind) uint64 {
	switch k {
	case protoreflect.BoolKind:
		return 1
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind,
		protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return 8
	}
	return 4
}

func packedCount(k protoreflect.Kind, v []byte) uint64 {
	switch scalarWire(k) {
	case protowire.Fixed32Type:
		return uint64(len(v)) / 4
	case protowire.Fixed64Type:
		return uint64(len(v)) / 8
	}
	var n uint64
	for _, c := range v {
		if c < 0x80 {
			n++
		}
	}
	return n
}

func scalarWire(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

func roundUp(n uint64) uint64 { return (n + 7) &^ 7 }

var structSizes sync.Map // protoreflect.FullName → uint64

// structSize is the size of md's generated Go struct (a map entry, which
// has none, is charged mapEntry by its field).
func structSize(md protoreflect.MessageDescriptor) uint64 {
	if v, ok := structSizes.Load(md.FullName()); ok {
		return v.(uint64)
	}
	size := uint64(256) // a type not linked in: a generous guess
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		size = uint64(reflect.TypeOf(mt.Zero().Interface()).Elem().Size())
	}
	size = roundUp(size)
	structSizes.Store(md.FullName(), size)
	return size
}
