package main

import (
	"regexp"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// The CLI never prints a private key, whatever the supervisor sends: the
// certificates of the state (query_certificates_from_the_state) and an
// HTTPS listener's default certificate (list_listeners) carry their key.
// Both renderers work on redacted copies of the answer.

// redactedKey stands for the content of a private key field.
const redactedKey = "<redacted>"

// privateKeyPEM matches a PEM private key block, or what is left of one
// when it was cut short, inside any text.
var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)

// keyHolders are the messages whose "key" field is a PEM private key.
var keyHolders = map[protoreflect.FullName]bool{
	(&command.CertificateAndKey{}).ProtoReflect().Descriptor().FullName():   true,
	(&command.HttpsListenerConfig{}).ProtoReflect().Descriptor().FullName(): true,
}

// redactResponse returns a copy of r in which every private key field
// holds redactedKey and every PEM private key block found in another
// string (the message included) is replaced by redactedKey.
func redactResponse(r *command.Response) *command.Response {
	c := proto.Clone(r).(*command.Response)
	redactMessage(c.ProtoReflect())
	return c
}

func scrubKeys(s string) string {
	if !privateKeyPEM.MatchString(s) {
		return s
	}
	return privateKeyPEM.ReplaceAllLiteralString(s, redactedKey)
}

// redactMessage redacts m in place, recursively.
func redactMessage(m protoreflect.Message) {
	type field struct {
		fd protoreflect.FieldDescriptor
		v  protoreflect.Value
	}
	var fields []field // collected first: m is not changed while ranging
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fields = append(fields, field{fd, v})
		return true
	})
	holder := keyHolders[m.Descriptor().FullName()]
	for _, f := range fields {
		fd, v := f.fd, f.v
		switch {
		case fd.IsMap():
			mv := v.Map()
			var keys []protoreflect.MapKey
			mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			for _, k := range keys {
				switch fd.MapValue().Kind() {
				case protoreflect.MessageKind:
					redactMessage(mv.Get(k).Message())
				case protoreflect.StringKind:
					mv.Set(k, protoreflect.ValueOfString(scrubKeys(mv.Get(k).String())))
				}
			}
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				switch fd.Kind() {
				case protoreflect.MessageKind:
					redactMessage(l.Get(i).Message())
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(scrubKeys(l.Get(i).String())))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			redactMessage(v.Message())
		case fd.Kind() == protoreflect.StringKind:
			s := v.String()
			switch {
			case holder && fd.Name() == "key" && s != "":
				m.Set(fd, protoreflect.ValueOfString(redactedKey))
			case scrubKeys(s) != s:
				m.Set(fd, protoreflect.ValueOfString(scrubKeys(s)))
			}
		}
	}
}
