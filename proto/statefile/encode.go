package statefile

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// encoder appends serde_json-style JSON for protobuf messages.
type encoder struct {
	buf []byte
}

func (e *encoder) fail(p *path, format string, args ...any) error {
	return &FieldError{Path: p.String(), Msg: fmt.Sprintf(format, args...)}
}

// message writes m as an object holding every slot in declaration order.
// Unset required fields are written with their declared default, as prost
// always holds a value for them; unset optional fields are null.
func (e *encoder) message(m protoreflect.Message, p *path, depth int) error {
	if depth > maxNesting {
		return e.fail(p, "messages nested deeper than %d levels", maxNesting)
	}
	e.buf = append(e.buf, '{')
	for i, sl := range schemaOf(m.Descriptor()).slots {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, sl.key)
		e.buf = append(e.buf, ':')
		fp := p.field(sl.key)
		if sl.oneof != nil {
			fd := m.WhichOneof(sl.oneof)
			if fd == nil {
				e.buf = append(e.buf, "null"...)
				continue
			}
			key := variantKey(fd)
			e.buf = append(e.buf, '{')
			e.buf = appendString(e.buf, key)
			e.buf = append(e.buf, ':')
			if err := e.single(fd, m.Get(fd), fp.field(key), depth); err != nil {
				return err
			}
			e.buf = append(e.buf, '}')
			continue
		}
		fd := sl.field
		var err error
		switch {
		case fd.IsList():
			err = e.list(fd, m.Get(fd).List(), fp, depth)
		case fd.IsMap():
			err = e.mapValue(fd, m.Get(fd).Map(), fp, depth)
		case fd.Cardinality() != protoreflect.Required && fd.HasPresence() && !m.Has(fd):
			e.buf = append(e.buf, "null"...)
		default:
			// Get returns the declared default for an unset scalar and an
			// empty message (all defaults) for an unset message.
			err = e.single(fd, m.Get(fd), fp, depth)
		}
		if err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *encoder) list(fd protoreflect.FieldDescriptor, l protoreflect.List, p *path, depth int) error {
	e.buf = append(e.buf, '[')
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.single(fd, l.Get(i), p.elem(i), depth); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

// mapValue writes a map as an object with its keys in ascending order, as a
// Rust BTreeMap serialises.
func (e *encoder) mapValue(fd protoreflect.FieldDescriptor, mp protoreflect.Map, p *path, depth int) error {
	keys := make([]protoreflect.MapKey, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, compareKeys(fd.MapKey().Kind()))
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		ks := keyText(fd.MapKey().Kind(), k)
		if !utf8.ValidString(ks) {
			return e.fail(p.mapKey(ks), "map key is not valid UTF-8")
		}
		e.buf = appendString(e.buf, ks)
		e.buf = append(e.buf, ':')
		if err := e.single(fd.MapValue(), mp.Get(k), p.mapKey(ks), depth); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func compareKeys(kind protoreflect.Kind) func(a, b protoreflect.MapKey) int {
	switch kind {
	case protoreflect.StringKind:
		return func(a, b protoreflect.MapKey) int { return cmp.Compare(a.String(), b.String()) }
	case protoreflect.BoolKind:
		return func(a, b protoreflect.MapKey) int {
			return cmp.Compare(boolInt(a.Bool()), boolInt(b.Bool()))
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return func(a, b protoreflect.MapKey) int { return cmp.Compare(a.Uint(), b.Uint()) }
	default: // signed integers
		return func(a, b protoreflect.MapKey) int { return cmp.Compare(a.Int(), b.Int()) }
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keyText is a map key as serde_json writes it: strings as they are,
// integers and booleans as their decimal or literal text.
func keyText(kind protoreflect.Kind, k protoreflect.MapKey) string {
	switch kind {
	case protoreflect.StringKind:
		return k.String()
	case protoreflect.BoolKind:
		return strconv.FormatBool(k.Bool())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(k.Uint(), 10)
	default:
		return strconv.FormatInt(k.Int(), 10)
	}
}

// single writes one non-repeated value of field fd.
func (e *encoder) single(fd protoreflect.FieldDescriptor, v protoreflect.Value, p *path, depth int) error {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case protoreflect.EnumKind:
		n := v.Enum()
		if fd.Enum().Values().ByNumber(n) == nil {
			return e.fail(p, "%d is not a value of enum %s", n, fd.Enum().FullName())
		}
		e.buf = strconv.AppendInt(e.buf, int64(n), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case protoreflect.StringKind:
		s := v.String()
		if !utf8.ValidString(s) {
			return e.fail(p, "string is not valid UTF-8")
		}
		e.buf = appendString(e.buf, s)
	case protoreflect.BytesKind:
		e.buf = append(e.buf, '[')
		for i, c := range v.Bytes() {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = strconv.AppendUint(e.buf, uint64(c), 10)
		}
		e.buf = append(e.buf, ']')
	case protoreflect.MessageKind:
		return e.message(v.Message(), p, depth+1)
	default: // float, double, group: absent from command.proto
		return e.fail(p, "field kind %s is not supported by the state file codec", fd.Kind())
	}
	return nil
}
