package statefile

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// decoder fills protobuf messages from parsed JSON, with upstream's rules
// for missing and null keys (docs/protocol.md §4.3).
type decoder struct{}

func fail(p *path, format string, args ...any) error {
	return &FieldError{Path: p.String(), Msg: fmt.Sprintf(format, args...)}
}

func typeError(p *path, want string, v *value) error {
	return fail(p, "expected %s, found %s", want, v.describe())
}

// message fills m from the JSON object v. Unknown keys are ignored; a known
// key given twice is refused, as serde refuses duplicate struct fields.
func (d decoder) message(v *value, m protoreflect.Message, p *path) error {
	if v.kind != jObject {
		return typeError(p, "object", v)
	}
	sc := schemaOf(m.Descriptor())
	found := make([]*value, len(sc.slots))
	for i := range v.members {
		mb := &v.members[i]
		j, ok := sc.byKey[mb.key]
		if !ok {
			continue
		}
		if found[j] != nil {
			return fail(p, "duplicate key %q", mb.key)
		}
		found[j] = &mb.val
	}
	for j, sl := range sc.slots {
		fp := p.field(sl.key)
		fv := found[j]
		if sl.oneof != nil {
			if err := d.oneof(sl, fv, m, fp); err != nil {
				return err
			}
			continue
		}
		fd := sl.field
		if fd.IsList() || fd.IsMap() {
			switch {
			case fv == nil && defaultWhenMissing[fd.FullName()]:
				continue
			case fv == nil:
				return fail(fp, "field missing (repeated and map fields must be present, [] or {} when empty)")
			case fv.kind == jNull:
				return fail(fp, "null is not allowed for a repeated or map field")
			}
			var err error
			if fd.IsList() {
				err = d.list(fv, fd, m.Mutable(fd).List(), fp)
			} else {
				err = d.mapValue(fv, fd, m.Mutable(fd).Map(), fp)
			}
			if err != nil {
				return err
			}
			continue
		}
		if fd.Cardinality() == protoreflect.Required {
			switch {
			case fv == nil:
				return fail(fp, "required field missing")
			case fv.kind == jNull:
				return fail(fp, "required field is null")
			}
		} else if fv == nil || fv.kind == jNull {
			continue // optional: unset
		}
		if err := d.setSingle(fv, fd, m, fp); err != nil {
			return err
		}
	}
	return nil
}

// oneof sets the member of sl named by the single key of v; a missing or
// null v leaves the oneof unset.
func (d decoder) oneof(sl slot, v *value, m protoreflect.Message, p *path) error {
	if v == nil || v.kind == jNull {
		return nil
	}
	if v.kind != jObject {
		return typeError(p, "object with one variant key, or null", v)
	}
	if len(v.members) != 1 {
		return fail(p, "a oneof object must have exactly one key, found %d", len(v.members))
	}
	mb := &v.members[0]
	fd, ok := sl.variants[mb.key]
	if !ok {
		return fail(p, "unknown variant %q", mb.key)
	}
	vp := p.field(mb.key)
	if mb.val.kind == jNull {
		return fail(vp, "null is not allowed as a variant's value")
	}
	return d.setSingle(&mb.val, fd, m, vp)
}

// setSingle decodes v into the non-repeated field fd of m.
func (d decoder) setSingle(v *value, fd protoreflect.FieldDescriptor, m protoreflect.Message, p *path) error {
	if fd.Kind() == protoreflect.MessageKind {
		return d.message(v, m.Mutable(fd).Message(), p)
	}
	pv, err := scalar(v, fd, p)
	if err != nil {
		return err
	}
	m.Set(fd, pv)
	return nil
}

func (d decoder) list(v *value, fd protoreflect.FieldDescriptor, l protoreflect.List, p *path) error {
	if v.kind != jArray {
		return typeError(p, "array", v)
	}
	for i := range v.elems {
		el := &v.elems[i]
		ep := p.elem(i)
		if el.kind == jNull {
			return fail(ep, "null is not allowed in a list")
		}
		if fd.Kind() == protoreflect.MessageKind {
			nv := l.NewElement()
			if err := d.message(el, nv.Message(), ep); err != nil {
				return err
			}
			l.Append(nv)
			continue
		}
		pv, err := scalar(el, fd, ep)
		if err != nil {
			return err
		}
		l.Append(pv)
	}
	return nil
}

// mapValue fills a map from a JSON object. A key given twice keeps its last
// value, as a Rust BTreeMap does.
func (d decoder) mapValue(v *value, fd protoreflect.FieldDescriptor, mp protoreflect.Map, p *path) error {
	if v.kind != jObject {
		return typeError(p, "object", v)
	}
	kfd, vfd := fd.MapKey(), fd.MapValue()
	for i := range v.members {
		mb := &v.members[i]
		kp := p.mapKey(mb.key)
		k, err := parseKey(mb.key, kfd, kp)
		if err != nil {
			return err
		}
		if mb.val.kind == jNull {
			return fail(kp, "null is not allowed as a map value")
		}
		if vfd.Kind() == protoreflect.MessageKind {
			nv := mp.NewValue()
			if err := d.message(&mb.val, nv.Message(), kp); err != nil {
				return err
			}
			mp.Set(k, nv)
			continue
		}
		pv, err := scalar(&mb.val, vfd, kp)
		if err != nil {
			return err
		}
		mp.Set(k, pv)
	}
	return nil
}

// parseKey converts a JSON object key into a map key of fd's kind.
func parseKey(s string, fd protoreflect.FieldDescriptor, p *path) (protoreflect.MapKey, error) {
	if fd.Kind() == protoreflect.StringKind {
		return protoreflect.ValueOfString(s).MapKey(), nil
	}
	if fd.Kind() == protoreflect.BoolKind {
		switch s {
		case "true":
			return protoreflect.ValueOfBool(true).MapKey(), nil
		case "false":
			return protoreflect.ValueOfBool(false).MapKey(), nil
		}
		return protoreflect.MapKey{}, fail(p, "map key must be \"true\" or \"false\"")
	}
	v, err := scalar(&value{kind: jNumber, s: s, isInt: s != "-0"}, fd, p)
	if err != nil {
		return protoreflect.MapKey{}, err
	}
	return v.MapKey(), nil
}

// scalar decodes a non-message value of field fd.
func scalar(v *value, fd protoreflect.FieldDescriptor, p *path) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if v.kind != jBool {
			return protoreflect.Value{}, typeError(p, "boolean", v)
		}
		return protoreflect.ValueOfBool(v.b), nil
	case protoreflect.StringKind:
		if v.kind != jString {
			return protoreflect.Value{}, typeError(p, "string", v)
		}
		return protoreflect.ValueOfString(v.s), nil
	case protoreflect.BytesKind:
		if v.kind != jArray {
			return protoreflect.Value{}, typeError(p, "array of integers 0-255", v)
		}
		b := make([]byte, len(v.elems))
		for i := range v.elems {
			n, err := parseUint(&v.elems[i], 8, "integer 0-255", p.elem(i))
			if err != nil {
				return protoreflect.Value{}, err
			}
			b[i] = byte(n)
		}
		return protoreflect.ValueOfBytes(b), nil
	case protoreflect.EnumKind:
		n, err := parseInt(v, 32, "integer (enum "+string(fd.Enum().FullName())+")", p)
		if err != nil {
			return protoreflect.Value{}, err
		}
		num := protoreflect.EnumNumber(n)
		if fd.Enum().Values().ByNumber(num) == nil {
			return protoreflect.Value{}, fail(p, "%d is not a value of enum %s", n, fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(num), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := parseInt(v, 32, "integer (int32)", p)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := parseInt(v, 64, "integer (int64)", p)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := parseUint(v, 32, "integer (uint32)", p)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := parseUint(v, 64, "integer (uint64)", p)
		return protoreflect.ValueOfUint64(n), err
	default: // float, double, group: absent from command.proto
		return protoreflect.Value{}, fail(p, "field kind %s is not supported by the state file codec", fd.Kind())
	}
}

func parseInt(v *value, bits int, want string, p *path) (int64, error) {
	if v.kind != jNumber || !v.isInt {
		return 0, typeError(p, want, v)
	}
	n, err := strconv.ParseInt(v.s, 10, bits)
	if err != nil {
		return 0, fail(p, "%s out of range for %d-bit signed integer", v.s, bits)
	}
	return n, nil
}

func parseUint(v *value, bits int, want string, p *path) (uint64, error) {
	if v.kind != jNumber || !v.isInt {
		return 0, typeError(p, want, v)
	}
	n, err := strconv.ParseUint(v.s, 10, bits)
	if err != nil {
		// A negative literal is a syntax error for ParseUint.
		return 0, fail(p, "%s out of range for %d-bit unsigned integer", v.s, bits)
	}
	return n, nil
}
