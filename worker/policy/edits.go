package policy

import (
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/worker/http1"
)

// HeaderPosition is where a header edit applies (upstream's HeaderPosition).
type HeaderPosition uint8

// Header positions.
const (
	HeaderUnspecified HeaderPosition = iota // refused: the direction is unknown
	HeaderRequest                           // the request forwarded to the backend
	HeaderResponse                          // the backend's response forwarded to the client
	HeaderBoth
)

// HeaderEdit is one configured header edit of a frontend. A non-empty
// Value appends the field "Name: Value" (fields of that name already in the
// message stay, as upstream); an empty Value deletes every field named
// Name (HAProxy's del-header). A delete and an append of one name replace it.
type HeaderEdit struct {
	Position    HeaderPosition
	Name, Value string
}

// HeaderEdits are the compiled edits of one direction: the deletions apply
// to the message's own fields, then the appended fields come last.
// Immutable.
type HeaderEdits struct {
	del   [][]byte // names of deleted fields: lower-case, '_' written '-'
	lines []byte   // "Name: value\r\n" for each appended field
}

// EditError is a header edit that CompileHeaderEdits did not take.
type EditError struct {
	Index int    // position of the edit in the list given
	Part  string // what is at fault: "position", "key" (the field name) or "value"
	// Refused is set for a well-formed edit of a field the proxy keeps
	// control of: it is left out and the other edits are kept. Otherwise
	// the edit is malformed and the frontend should not be served.
	Refused bool
	Msg     string // what is wrong, naming the field when known
}

func (e *EditError) Error() string { return fmt.Sprintf("header edit %d: %s", e.Index, e.Msg) }

// CompileHeaderEdits validates and splits the header edits of a frontend
// on a listener whose request id field is idHeader. It reports, in order,
// every edit it did not take (errs): malformed edits, which the proxy
// cannot make sense of (an unspecified position, a name that is not a
// token, a control character other than HTAB in a value), and refused
// ones (Refused set), of fields the proxy must keep control of (framing,
// hop-by-hop fields, Host, the fields it writes itself). After a malformed
// edit req and resp are nil: the caller should not serve the frontend,
// since the edit may be a deletion meant to keep something from the client
// or the backend. Refused edits are left out, the others kept. req or resp
// is nil when no edit applies in that direction.
func CompileHeaderEdits(edits []HeaderEdit, idHeader string, rewritesHost bool) (req, resp *HeaderEdits, errs []*EditError) {
	malformed := false
	bad := func(i int, part, format string, args ...any) {
		errs = append(errs, &EditError{Index: i, Part: part, Msg: fmt.Sprintf(format, args...)})
		malformed = true
	}
	for i, e := range edits {
		if e.Position < HeaderRequest || e.Position > HeaderBoth {
			bad(i, "position", "position of %q unspecified (want request, response or both)", e.Name)
			continue
		}
		if !http1.IsToken(e.Name) {
			bad(i, "key", "%q is not a field name", e.Name)
			continue
		}
		if j := strings.IndexFunc(e.Value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }); j >= 0 {
			bad(i, "value", "control character %q in the value of %s", e.Value[j:j+1], e.Name)
			continue
		}
		name := strings.ToLower(e.Name)
		if e.Position != HeaderResponse {
			if why := refusedRequestEdit(name, idHeader, rewritesHost); why != "" {
				errs = append(errs, &EditError{Index: i, Part: "key", Refused: true,
					Msg: fmt.Sprintf("%s cannot be edited in requests: %s", e.Name, why)})
			} else {
				req = req.add(name, e)
			}
		}
		if e.Position != HeaderRequest {
			if why := refusedResponseEdit(name, idHeader); why != "" {
				errs = append(errs, &EditError{Index: i, Part: "key", Refused: true,
					Msg: fmt.Sprintf("%s cannot be edited in responses: %s", e.Name, why)})
			} else {
				resp = resp.add(name, e)
			}
		}
	}
	if malformed {
		return nil, nil, errs
	}
	return req, resp, errs
}

func (h *HeaderEdits) add(lower string, e HeaderEdit) *HeaderEdits {
	if h == nil {
		h = &HeaderEdits{}
	}
	if e.Value == "" {
		h.del = append(h.del, []byte(strings.ReplaceAll(lower, "_", "-")))
	} else {
		h.lines = append(h.lines, e.Name+": "+e.Value+"\r\n"...)
	}
	return h
}

// refusedCommon explains why an edit of the lower-case name is refused in
// both directions, or returns "".
func refusedCommon(name, idHeader string) string {
	switch {
	case name == "content-length" || name == "transfer-encoding":
		return "the proxy frames messages itself"
	case http1.IsHopByHop([]byte(name)) || name == "trailer":
		return "a hop-by-hop field"
	case strings.EqualFold(name, idHeader):
		return "the proxy writes the request id field"
	}
	return ""
}

func refusedRequestEdit(name, idHeader string, rewritesHost bool) string {
	if why := refusedCommon(name, idHeader); why != "" {
		return why
	}
	switch name {
	case "host":
		return "the proxy writes Host from the request (use rewrite_host)"
	case "expect":
		return "the proxy handles 100-continue itself"
	case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "forwarded", "x-real-ip", "x-request-id":
		return "the proxy writes this field"
	case "x-forwarded-host":
		if rewritesHost {
			return "the proxy writes this field when it rewrites the host"
		}
	}
	return ""
}

func refusedResponseEdit(name, idHeader string) string {
	if why := refusedCommon(name, idHeader); why != "" {
		return why
	}
	if name == "strict-transport-security" {
		return "use the hsts setting"
	}
	return ""
}

// Drop removes the fields h deletes from fs, in place, and returns what is
// left.
func (h *HeaderEdits) Drop(fs []http1.Field) []http1.Field {
	if h == nil || len(h.del) == 0 {
		return fs
	}
	k := 0
	for i := range fs {
		if h.deletes(fs[i].Name) {
			continue
		}
		fs[k] = fs[i]
		k++
	}
	return fs[:k]
}

// deletes reports whether h deletes the fields named name, in any case
// and with '_' read as '-' either side: CGI, WSGI and the frameworks on
// them read a client's X_Internal_User as X-Internal-User, so deleting
// one spelling and forwarding the other would give the field back.
func (h *HeaderEdits) deletes(name []byte) bool { return http1.NamedIn(h.del, name) }

// Deleted returns the names of the fields h deletes (lower-case, with "-" for "_"), nil for
// none: the trailers a proxy drops too (http1.ChunkedDecoder.Drop), or a
// client could send a deleted field as a trailer to a backend that merges
// trailers into the head. The caller must not modify them.
func (h *HeaderEdits) Deleted() [][]byte {
	if h == nil {
		return nil
	}
	return h.del
}

// FieldLines returns the appended field lines, nil for none.
func (h *HeaderEdits) FieldLines() []byte {
	if h == nil {
		return nil
	}
	return h.lines
}
