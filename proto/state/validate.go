package state

import (
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// addrKey returns the map key of a required socket address. A missing
// address or a port beyond 16 bits is refused as InvalidValue naming field
// (upstream would read the first as 0.0.0.0:0 and silently truncate the
// second).
func addrKey(field string, a *command.SocketAddress) (netip.AddrPort, *Error) {
	if a == nil {
		return netip.AddrPort{}, invalidValue(field, "is required")
	}
	ap, err := a.AddrPort()
	if err != nil {
		return netip.AddrPort{}, invalidValue(field, err.Error())
	}
	return ap, nil
}

// checkOptionalAddr refuses a present address whose port does not fit 16 bits.
func checkOptionalAddr(field string, a *command.SocketAddress) *Error {
	if a == nil {
		return nil
	}
	_, e := addrKey(field, a)
	return e
}

// sameAddr reports whether a is the address ap (an invalid a never is).
func sameAddr(a *command.SocketAddress, ap netip.AddrPort) bool {
	got, err := a.AddrPort()
	return err == nil && got == ap
}

// fillRequired sets every unset proto2 required field of m, recursively, to
// its declared default (an empty message for message fields), the way
// upstream's decoder materialises them. Stored messages then always marshal
// without AllowPartial and carry every key upstream's state-file loader
// demands (docs/protocol.md §4.3).
func fillRequired(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Cardinality() != protoreflect.Required || m.Has(fd) {
			continue
		}
		if fd.Message() != nil {
			m.Mutable(fd)
		} else {
			m.Set(fd, fd.Default())
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for j := 0; j < l.Len(); j++ {
				fillRequired(l.Get(j).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				fillRequired(mv.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			fillRequired(v.Message())
		}
		return true
	})
}

// validEnum reports whether e holds one of its type's declared values.
func validEnum(e protoreflect.Enum) bool {
	return e.Descriptor().Values().ByNumber(e.Number()) != nil
}

// listenerType returns the proxy field of a RemoveListener,
// ActivateListener or DeactivateListener. A value outside ListenerType is
// refused as WrongFieldValue, including one the Go decoder parked among the
// unknown fields (proto2 enums are closed in Go; upstream's are open and it
// refuses the value).
func listenerType(m protoreflect.Message) (command.ListenerType, *Error) {
	fd := m.Descriptor().Fields().ByName("proxy")
	if !m.Has(fd) {
		if n, ok := lastUnknownVarint(m.GetUnknown(), fd.Number()); ok {
			return 0, wrongFieldValue(fmt.Sprintf("unknown ListenerType value %d", int32(n)))
		}
		return command.ListenerType_HTTP, nil
	}
	t := command.ListenerType(m.Get(fd).Enum())
	if !validEnum(t) {
		return 0, wrongFieldValue(fmt.Sprintf("unknown ListenerType value %d", int32(t)))
	}
	return t, nil
}

// lastUnknownVarint returns the last varint recorded for field num in raw
// unknown-field bytes.
func lastUnknownVarint(b []byte, num protoreflect.FieldNumber) (uint64, bool) {
	var (
		val   uint64
		found bool
	)
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			break
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			v, vl := protowire.ConsumeVarint(b)
			if vl < 0 {
				break
			}
			val, found = v, true
			b = b[vl:]
			continue
		}
		vl := protowire.ConsumeFieldValue(n, typ, b)
		if vl < 0 {
			break
		}
		b = b[vl:]
	}
	return val, found
}

// validateHealthCheck checks a health check before it is stored, whether it
// comes inline in add_cluster or through set_health_check. The reason names
// the offending sub-field; the error field is "health_check" as upstream's.
func validateHealthCheck(hc *command.HealthCheckConfig) *Error {
	uri := hc.GetUri()
	switch {
	case len(uri) == 0 || uri[0] != '/':
		return invalidValue("health_check", "uri must start with '/'")
	case hasControl(uri):
		return invalidValue("health_check", "uri must not contain control characters")
	case hc.GetInterval() < 1:
		return invalidValue("health_check", "interval must be >= 1")
	case hc.GetTimeout() < 1:
		return invalidValue("health_check", "timeout must be >= 1")
	case hc.GetHealthyThreshold() < 1:
		return invalidValue("health_check", "healthy_threshold must be >= 1")
	case hc.GetUnhealthyThreshold() < 1:
		return invalidValue("health_check", "unhealthy_threshold must be >= 1")
	case hc.GetExpectedStatus() != 0 && (hc.GetExpectedStatus() < 100 || hc.GetExpectedStatus() > 599):
		return invalidValue("health_check", "expected_status must be 0 (any 2xx) or 100-599")
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// isToken reports whether s is a non-empty RFC 9110 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!', c == '#', c == '$', c == '%', c == '&', c == '\'', c == '*',
			c == '+', c == '-', c == '.', c == '^', c == '_', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return true
}

// ownEnumChecks are the enum fields a verb checks itself, with its own
// error (upstream's): a frontend's position and path kind, a listener
// type.
var ownEnumChecks = map[string]bool{
	"RequestHttpFrontend.position": true,
	"PathRule.kind":                true,
}

// checkRequestEnums refuses, as WrongFieldValue naming the field, a request
// holding an enum value its type does not declare, at any depth (Go's
// decoder keeps such a value of a proto2 enum in the field rather than
// among the unknown fields): the state would keep a record that save_state
// cannot write (proto/statefile refuses it) and workers cannot read.
// Fields in ownEnumChecks, and ListenerType fields (listenerType), are
// left to their verbs.
func checkRequestEnums(m protoreflect.Message, path string) *Error {
	var e *Error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := string(fd.Name())
		if path != "" {
			p = path + "." + p
		}
		switch {
		case fd.Enum() != nil && !fd.IsMap():
			if ownEnumChecks[string(fd.ContainingMessage().Name())+"."+string(fd.Name())] || fd.Enum().Name() == "ListenerType" {
				return true
			}
			vals := []protoreflect.EnumNumber{}
			if fd.IsList() {
				for i := 0; i < v.List().Len(); i++ {
					vals = append(vals, v.List().Get(i).Enum())
				}
			} else {
				vals = append(vals, v.Enum())
			}
			for _, n := range vals {
				if fd.Enum().Values().ByNumber(n) == nil {
					e = wrongFieldValue(fmt.Sprintf("unknown %s value %d for field '%s'", fd.Enum().Name(), int32(n), p))
					return false
				}
			}
		case fd.IsMap():
			if fd.MapValue().Enum() != nil || fd.MapValue().Message() == nil {
				return true // no map of enums in command.proto
			}
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				e = checkRequestEnums(mv.Message(), p)
				return e == nil
			})
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && e == nil; i++ {
				e = checkRequestEnums(v.List().Get(i).Message(), p)
			}
		case fd.Message() != nil:
			e = checkRequestEnums(v.Message(), p)
		}
		return e == nil
	})
	return e
}
