package state

import (
	"net/netip"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// listenerConfig is what the four listener configurations have in common.
type listenerConfig interface {
	proto.Message
	GetAddress() *command.SocketAddress
	GetActive() bool
}

// listenerPatch is what the four Update*ListenerConfig messages have in common.
type listenerPatch interface {
	proto.Message
	GetAddress() *command.SocketAddress
}

// addListener stores a listener under its address; object names the
// listener type in errors ("HttpListener"...). The listener is stored with
// its own active flag. Its knobs are not validated: upstream does not, and
// a state file written by upstream must load.
func addListener[T listenerConfig](m map[netip.AddrPort]T, object string, l T) *Error {
	ap, e := addrKey("address", l.GetAddress())
	if e != nil {
		return e
	}
	if e := checkOptionalAddr("public_address", publicAddress(l)); e != nil {
		return e
	}
	if _, dup := m[ap]; dup {
		return exists(object, l.GetAddress().Display())
	}
	fillRequired(l.ProtoReflect())
	m[ap] = l
	return nil
}

func publicAddress(m proto.Message) *command.SocketAddress {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("public_address")
	if fd == nil || !r.Has(fd) {
		return nil
	}
	return r.Get(fd).Message().Interface().(*command.SocketAddress)
}

// updateListener validates a patch (validatePatch), then applies its
// present fields to the listener at its address (applyPatch). The patch is
// refused as a whole or applied as a whole.
func updateListener[T listenerConfig, P listenerPatch](m map[netip.AddrPort]T, object string, p P) *Error {
	ap, e := addrKey("address", p.GetAddress())
	if e != nil {
		return e
	}
	if e := validatePatch(p.ProtoReflect()); e != nil {
		return e
	}
	l, ok := m[ap]
	if !ok {
		return notFound(object, p.GetAddress().Display())
	}
	applyPatch(l.ProtoReflect(), p.ProtoReflect())
	fillRequired(l.ProtoReflect())
	return nil
}

// validatePatch checks the present fields of an Update*ListenerConfig in
// declaration order, with the rules of docs/protocol.md §5.3: every h2_* knob
// within its range (h2KnobRange: >= 1, h2_max_concurrent_streams at most
// 10000 and h2_initial_connection_window within [65535, 2^31-1], as
// upstream clamps them, h2_stream_shrink_ratio >= 2,
// h2_graceful_shutdown_deadline_seconds 0 allowed); sozu_id_header must be
// a non-empty header token; ALPN values must be "h2" or "http/1.1";
// public_address must have a 16-bit port.
func validatePatch(p protoreflect.Message) *Error {
	fields := p.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !p.Has(fd) {
			continue
		}
		v := p.Get(fd)
		name := string(fd.Name())
		switch {
		case name == "public_address":
			if e := checkOptionalAddr(name, v.Message().Interface().(*command.SocketAddress)); e != nil {
				return e
			}
		case strings.HasPrefix(name, "h2_"):
			if is, bad := h2KnobIssue(fd, v); bad {
				return invalidValue(name, is.Reason)
			}
		case name == "sozu_id_header":
			switch h := v.String(); {
			case h == "":
				return invalidValue(name, "must not be empty")
			case !isToken(h):
				return invalidValue(name, "must be a valid HTTP header name (RFC 9110 token)")
			}
		case name == "alpn_protocols":
			for _, a := range v.Message().Interface().(*command.AlpnProtocols).GetValues() {
				if a != "h2" && a != "http/1.1" {
					return invalidValue(name, `each value must be "h2" or "http/1.1"`)
				}
			}
		}
	}
	return nil
}

// applyPatch copies each present field of patch p onto the same-named field
// of listener l, except:
//   - address, the listener's key, is not copied;
//   - answers is merged entry by entry, an empty value keeping the current one;
//   - http_answers is merged field by field (absent = keep);
//   - alpn_protocols replaces the list with its values; present but empty
//     stores an empty list, which the runtime reads as the default
//     ["h2", "http/1.1"] (upstream stores it the same way);
//   - hsts (a message) replaces the whole policy.
func applyPatch(l, p protoreflect.Message) {
	target := l.Descriptor().Fields()
	p.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := fd.Name()
		dst := target.ByName(name)
		switch name {
		case "address":
		case "answers":
			cur := l.Mutable(dst).Map()
			v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
				if val.String() != "" {
					cur.Set(k, val)
				}
				return true
			})
		case "http_answers":
			cur := l.Mutable(dst).Message()
			v.Message().Range(func(afd protoreflect.FieldDescriptor, av protoreflect.Value) bool {
				cur.Set(afd, av)
				return true
			})
		case "alpn_protocols":
			l.Clear(dst)
			list := l.Mutable(dst).List()
			for _, a := range v.Message().Interface().(*command.AlpnProtocols).GetValues() {
				list.Append(protoreflect.ValueOfString(a))
			}
		default:
			l.Set(dst, v)
		}
		return true
	})
}

// removeListener forgets a listener; an unknown address is NoChange and a
// proxy outside ListenerType is WrongFieldValue.
func (s *ConfigState) removeListener(r *command.RemoveListener) *Error {
	t, e := listenerType(r.ProtoReflect())
	if e != nil {
		return e
	}
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	var found bool
	switch t {
	case command.ListenerType_HTTP:
		found = forget(s.httpListeners, ap)
	case command.ListenerType_HTTPS:
		found = forget(s.httpsListeners, ap)
	case command.ListenerType_TCP:
		found = forget(s.tcpListeners, ap)
	case command.ListenerType_UDP:
		found = forget(s.udpListeners, ap)
	}
	if !found {
		return noChange()
	}
	return nil
}

func forget[T any](m map[netip.AddrPort]T, ap netip.AddrPort) bool {
	_, ok := m[ap]
	delete(m, ap)
	return ok
}

// setActive sets the active flag of the listener named by an
// ActivateListener or DeactivateListener (msg); setting it to its current
// value is accepted. An unknown address is NotFound "<Proto>Listener".
func (s *ConfigState) setActive(msg proto.Message, addr *command.SocketAddress, active bool) *Error {
	t, e := listenerType(msg.ProtoReflect())
	if e != nil {
		return e
	}
	ap, e := addrKey("address", addr)
	if e != nil {
		return e
	}
	switch t {
	case command.ListenerType_HTTP:
		return flip(s.httpListeners, "HttpListener", ap, addr, active)
	case command.ListenerType_HTTPS:
		return flip(s.httpsListeners, "HttpsListener", ap, addr, active)
	case command.ListenerType_TCP:
		return flip(s.tcpListeners, "TcpListener", ap, addr, active)
	default:
		return flip(s.udpListeners, "UdpListener", ap, addr, active)
	}
}

func flip[T listenerConfig](m map[netip.AddrPort]T, object string, ap netip.AddrPort, addr *command.SocketAddress, active bool) *Error {
	l, ok := m[ap]
	if !ok {
		return notFound(object, addr.Display())
	}
	r := l.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByName("active"), protoreflect.ValueOfBool(active))
	return nil
}
