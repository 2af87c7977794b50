package main

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/redact"
)

// The CLI never prints a secret, whatever the server sends (an upstream
// supervisor sends private keys, password hashes and header values): both
// renderers work on a copy redacted by proto/redact, the supervisor's own
// rules, in which a private key field that was sent reads redactedKey
// rather than "" so that the operator sees there is one.

// redactedKey stands for the content of a private key field.
const redactedKey = redact.Masked

// redactResponse returns a redacted copy of r (see above).
func redactResponse(r *command.Response) *command.Response {
	c := proto.Clone(redact.Response(r)).(*command.Response)
	markCleared(c.ProtoReflect())
	return c
}

// markCleared sets every field of m, recursively, that redact clears (a
// private key) and that is present to redactedKey.
func markCleared(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					markCleared(mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind {
				for i := range v.List().Len() {
					markCleared(v.List().Get(i).Message())
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			markCleared(v.Message())
		case redact.Fields[fd.FullName()] == redact.Clear && fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(redactedKey))
		}
		return true
	})
}
