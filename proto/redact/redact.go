// Package redact removes secrets from what the supervisor answers on the
// command socket. It is the single list of the secret-bearing fields of
// command.proto (Fields) and the one function that applies it (Response).
package redact

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// Rule says how a secret field is redacted.
type Rule int

const (
	// Clear empties the field: a private key reads "" on the command
	// socket, as upstream answers it.
	Clear Rule = iota + 1
	// Mask replaces each non-empty value by Masked, so that a client still
	// sees that (and how many) values are set. An empty value stays empty:
	// an empty header value means "remove the header" and tells nothing.
	Mask
)

// Masked stands for a masked value.
const Masked = "<redacted>"

func field(m proto.Message, name protoreflect.Name) protoreflect.FullName {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic("redact: no field " + string(name) + " in " + string(m.ProtoReflect().Descriptor().FullName()))
	}
	return fd.FullName()
}

// Fields lists every secret-bearing field of command.proto and its rule.
// State files keep these fields; the command socket never shows them. A
// test walks the descriptors and fails when a field that looks secret is
// neither here nor reviewed as harmless.
var Fields = map[protoreflect.FullName]Rule{
	// PEM private keys.
	field(&command.CertificateAndKey{}, "key"):   Clear,
	field(&command.HttpsListenerConfig{}, "key"): Clear,
	// "user:sha256(password)", unsalted: a dictionary attack away from
	// the passwords.
	field(&command.Cluster{}, "authorized_hashes"): Mask,
	// Header edits often carry credentials (Authorization: Bearer …,
	// X-Api-Key …); the header names (Header.key) stay visible.
	field(&command.Header{}, "val"): Mask,
}

// Response returns r with every field of Fields redacted by its rule and
// every PEM private key block (ScrubPEM) removed from every string and
// bytes value, map keys included. r is never modified: when something
// must change, the result is a redacted copy; otherwise it is r itself.
// A nil r is returned as is.
func Response(r *command.Response) *command.Response {
	if r == nil || !walk(r.ProtoReflect(), false) {
		return r
	}
	c := proto.Clone(r).(*command.Response)
	walk(c.ProtoReflect(), true)
	return c
}

// Message returns m with every field of Fields redacted by its rule and
// every PEM private key block removed, as Response does for an answer: m
// itself when nothing must change, else a redacted copy. m is never
// modified. A nil m is returned as is.
func Message[M proto.Message](m M) M {
	if !m.ProtoReflect().IsValid() || !walk(m.ProtoReflect(), false) {
		return m
	}
	c := proto.Clone(m).(M)
	walk(c.ProtoReflect(), true)
	return c
}

// walk reports whether m holds something to redact; with edit it also
// redacts it, in place.
//
// The fields set are found through the descriptor (command.proto has no
// extensions, the only fields Range would add), not collected by Range
// first: m may change as they are visited, and a list of them for every
// message cost more memory than the messages (a list of headers).
func walk(m protoreflect.Message, edit bool) bool {
	fields := m.Descriptor().Fields()
	found := false
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		rule := Fields[fd.FullName()]
		switch {
		case fd.IsMap():
			found = walkMap(fd, v.Map(), edit) || found
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if fd.Kind() == protoreflect.MessageKind {
					found = walk(l.Get(i).Message(), edit) || found
					continue
				}
				if nv, changed := scalar(fd, l.Get(i), rule); changed {
					found = true
					if edit {
						l.Set(i, nv)
					}
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			found = walk(v.Message(), edit) || found
		default:
			if nv, changed := scalar(fd, v, rule); changed {
				found = true
				if edit {
					m.Set(fd, nv)
				}
			}
		}
		if found && !edit {
			return true
		}
	}
	return found
}

// walkMap redacts the keys and values of a map field.
func walkMap(fd protoreflect.FieldDescriptor, mv protoreflect.Map, edit bool) bool {
	type kv struct {
		k protoreflect.MapKey
		v protoreflect.Value
	}
	var kvs []kv
	mv.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		kvs = append(kvs, kv{k, v})
		return true
	})
	found := false
	for _, e := range kvs {
		k, v := e.k, e.v
		if fd.MapValue().Kind() == protoreflect.MessageKind {
			found = walk(v.Message(), edit) || found
		} else if nv, changed := scalar(fd.MapValue(), v, Fields[fd.FullName()]); changed {
			found = true
			if edit {
				mv.Set(k, nv)
			}
		}
		if fd.MapKey().Kind() == protoreflect.StringKind {
			if ks := k.String(); HasPrivateKey(ks) {
				found = true
				if edit {
					mv.Clear(k)
					mv.Set(protoreflect.ValueOfString(ScrubPEM(ks)).MapKey(), v)
				}
			}
		}
		if found && !edit {
			return true
		}
	}
	return found
}

// scalar returns the redacted form of a string or bytes value v of field
// fd under rule (0: none), and whether it differs from v.
func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value, rule Rule) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		switch {
		case rule == Clear && s != "":
			return protoreflect.ValueOfString(""), true
		case rule == Mask && s != "" && s != Masked:
			return protoreflect.ValueOfString(Masked), true
		case rule == 0 && HasPrivateKey(s):
			return protoreflect.ValueOfString(ScrubPEM(s)), true
		}
	case protoreflect.BytesKind:
		if b := v.Bytes(); HasPrivateKey(string(b)) {
			return protoreflect.ValueOfBytes([]byte(ScrubPEM(string(b)))), true
		}
	}
	return v, false
}
