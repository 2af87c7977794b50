package state

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// FrontendKey returns the key that identifies an HTTP or HTTPS frontend in
// the state: "<ip:port>;<hostname>;<P|R|=><path>[;<method>]" (P prefix,
// R regex, = equals), the method part present whenever method is set.
// ok is false when the path kind is not a PathRuleKind value.
func FrontendKey(f *command.RequestHttpFrontend) (key string, ok bool) {
	var kind string
	switch f.GetPath().GetKind() {
	case command.PathRuleKind_PREFIX:
		kind = "P"
	case command.PathRuleKind_REGEX:
		kind = "R"
	case command.PathRuleKind_EQUALS:
		kind = "="
	default:
		return "", false
	}
	key = f.GetAddress().Display() + ";" + f.GetHostname() + ";" + kind + f.GetPath().GetValue()
	if f.Method != nil {
		key += ";" + f.GetMethod()
	}
	return key, true
}

// addHTTPFront inserts an HTTP(S) frontend under its key; object names it
// in errors ("HttpFrontend" or "HttpsFrontend"). The cluster need not exist.
func addHTTPFront(m map[string]*command.RequestHttpFrontend, object string, f *command.RequestHttpFrontend) *Error {
	f = orEmpty(f)
	if _, e := addrKey("address", f.GetAddress()); e != nil {
		return e
	}
	key, ok := FrontendKey(f)
	if !ok {
		return frontendError(f.GetAddress().Display()+";"+f.GetHostname(),
			fmt.Sprintf("invalid value %d for field 'path.kind'", int32(f.GetPath().GetKind())))
	}
	if _, dup := m[key]; dup {
		return exists(object, key)
	}
	if !validEnum(f.GetPosition()) {
		return frontendError(key, fmt.Sprintf("invalid value %d for field 'position'", int32(f.GetPosition())))
	}
	fillRequired(f.ProtoReflect())
	m[key] = f
	return nil
}

// removeHTTPFront removes the HTTP(S) frontend with the same key.
func removeHTTPFront(m map[string]*command.RequestHttpFrontend, object string, f *command.RequestHttpFrontend) *Error {
	f = orEmpty(f)
	if _, e := addrKey("address", f.GetAddress()); e != nil {
		return e
	}
	key, ok := FrontendKey(f)
	if !ok {
		return frontendError(f.GetAddress().Display()+";"+f.GetHostname(),
			fmt.Sprintf("invalid value %d for field 'path.kind'", int32(f.GetPath().GetKind())))
	}
	if _, found := m[key]; !found {
		return notFound(object, key)
	}
	delete(m, key)
	return nil
}

// l4Front is what RequestTcpFrontend and RequestUdpFrontend have in common.
type l4Front interface {
	proto.Message
	GetClusterId() string
	GetAddress() *command.SocketAddress
	GetTags() map[string]string
}

// addL4Front adds a TCP or UDP frontend to its cluster's list; an exact
// duplicate (same cluster, address and tags) is refused. The list is kept
// in canonical order (address, then tags) so saved state and hashes do not
// depend on insertion order.
func addL4Front[T l4Front](m map[string][]T, object string, f T) *Error {
	ap, e := addrKey("address", f.GetAddress())
	if e != nil {
		return e
	}
	id := f.GetClusterId()
	for _, x := range m[id] {
		if sameAddr(x.GetAddress(), ap) && compareTags(x.GetTags(), f.GetTags()) == 0 {
			return exists(object, debugL4(object, f))
		}
	}
	fillRequired(f.ProtoReflect())
	l := append(m[id], f)
	slices.SortStableFunc(l, compareL4)
	m[id] = l
	return nil
}

// removeL4Front removes every frontend of the cluster bound to the address,
// whatever its tags. A cluster without frontends is NotFound; an address
// without frontend is NoChange.
func removeL4Front[T l4Front](m map[string][]T, object string, f T) *Error {
	ap, e := addrKey("address", f.GetAddress())
	if e != nil {
		return e
	}
	id := f.GetClusterId()
	l := m[id]
	if len(l) == 0 {
		return notFound(object, debugL4("Request"+object, f))
	}
	kept := slices.DeleteFunc(slices.Clone(l), func(x T) bool { return sameAddr(x.GetAddress(), ap) })
	if len(kept) == len(l) {
		return noChange()
	}
	if len(kept) == 0 {
		delete(m, id)
	} else {
		m[id] = kept
	}
	return nil
}

func compareL4[T l4Front](a, b T) int {
	return cmp.Or(compareAddr(a.GetAddress(), b.GetAddress()), compareTags(a.GetTags(), b.GetTags()))
}

// compareTags orders tag maps by their sorted (key, value) pairs.
func compareTags(a, b map[string]string) int {
	ka, kb := sortedKeys(a), sortedKeys(b)
	for i := 0; i < len(ka) && i < len(kb); i++ {
		if c := cmp.Or(cmp.Compare(ka[i], kb[i]), cmp.Compare(a[ka[i]], b[kb[i]])); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ka), len(kb))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// debugL4 renders a TCP/UDP frontend the way upstream's error texts show it
// (a Rust debug rendering): `TcpFrontend { cluster_id: "db", address:
// 0.0.0.0:5432, tags: {"env": "prod"} }`.
func debugL4(name string, f l4Front) string {
	tags := f.GetTags()
	parts := make([]string, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		parts = append(parts, fmt.Sprintf("%q: %q", k, tags[k]))
	}
	return fmt.Sprintf("%s { cluster_id: %q, address: %s, tags: {%s} }",
		name, f.GetClusterId(), f.GetAddress().Display(), strings.Join(parts, ", "))
}
