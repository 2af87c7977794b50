package redact

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Keys removes the private keys from m, in place: every field of Fields
// with rule Clear is emptied and every PEM private key block (ScrubPEM) is
// removed from every string; other secrets (password hashes, header
// values) are kept. It returns how many fields it changed. This is what a
// state file written for a client that may not export keys holds.
func Keys(m proto.Message) int {
	if m == nil {
		return 0
	}
	return clearKeys(m.ProtoReflect())
}

func clearKeys(m protoreflect.Message) int {
	type entry struct {
		fd protoreflect.FieldDescriptor
		v  protoreflect.Value
	}
	var entries []entry
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		entries = append(entries, entry{fd, v})
		return true
	})
	n := 0
	for _, e := range entries {
		fd, v := e.fd, e.v
		rule := Fields[fd.FullName()]
		if rule != Clear {
			rule = 0 // only private keys go; PEM blocks are scrubbed everywhere
		}
		switch {
		case fd.IsMap():
			mv := v.Map()
			mv.Range(func(k protoreflect.MapKey, x protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					n += clearKeys(x.Message())
				} else if nx, changed := scalar(fd.MapValue(), x, 0); changed {
					mv.Set(k, nx)
					n++
				}
				return true
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if fd.Kind() == protoreflect.MessageKind {
					n += clearKeys(l.Get(i).Message())
				} else if nx, changed := scalar(fd, l.Get(i), rule); changed {
					l.Set(i, nx)
					n++
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			n += clearKeys(v.Message())
		default:
			if nx, changed := scalar(fd, v, rule); changed {
				m.Set(fd, nx)
				n++
			}
		}
	}
	return n
}
