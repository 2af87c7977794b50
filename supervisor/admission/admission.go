// Package admission decides who may run which verb on the command socket:
// a pure function of the configured policy, the peer's credentials and the verb.
package admission

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/peercred"
)

// Role is what a peer may do on the command socket. Roles are ordered:
// Admin may run everything ReadOnly may.
type Role uint8

const (
	None     Role = iota // refused every verb
	ReadOnly             // status, queries, lists, metrics, events
	Admin                // every verb
)

// String returns "none", "read-only" or "admin".
func (r Role) String() string {
	switch r {
	case None:
		return "none"
	case ReadOnly:
		return "read-only"
	case Admin:
		return "admin"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText writes the role as String does, for JSON logs and audit records.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Policy is the admission configuration. It is a value; Decide never
// modifies its slices.
//
// Precedence, first match wins:
//  1. a UID in ReadOnlyUIDs is read-only (even if also in AllowedUIDs, or in
//     an admin group: a UID entry is the most specific and the least
//     privilege wins; Validate reports the UID-list overlap);
//  2. a UID in AllowedUIDs is admin; when neither AllowedUIDs nor AllowedGIDs
//     is set, uid 0 and SelfUID are admin instead (the default: only root
//     and the supervisor's own user);
//  3. a peer with a GID in AllowedGIDs is admin;
//  4. a peer with a GID in ReadOnlyGIDs is read-only;
//  5. anyone else is refused.
//
// GIDs are the peer's primary gid and its supplementary gids, both as the
// kernel recorded them at connect time (SO_PEERCRED, SO_PEERGROUPS), never
// read later from /proc. Setting only read-only lists keeps the default
// admins. Once an admin list is set, root is admin only if listed
// (upstream's command_allowed_uids refuses every UID outside it).
type Policy struct {
	AllowedUIDs  []uint32 // command_allowed_uids: admin
	AllowedGIDs  []uint32 // command_allowed_gids: admin
	ReadOnlyUIDs []uint32 // command_readonly_uids: read-only
	ReadOnlyGIDs []uint32 // command_readonly_gids: read-only
	SelfUID      uint32   // the supervisor's own uid (os.Getuid())
}

// adminListed reports whether an admin list is configured, replacing the
// default admins.
func (p Policy) adminListed() bool { return len(p.AllowedUIDs) > 0 || len(p.AllowedGIDs) > 0 }

// Validate reports, naming the keys and ids, a UID listed both as admin and
// read-only, or a GID listed both ways: each gets one role. Decide does not
// need it (it gives such a UID read-only), but an operator should be told.
func (p Policy) Validate() error {
	var errs []error
	for _, u := range dupes(p.AllowedUIDs, p.ReadOnlyUIDs) {
		errs = append(errs, fmt.Errorf("UID %d is in both command_allowed_uids and command_readonly_uids: give it one role", u))
	}
	for _, g := range dupes(p.AllowedGIDs, p.ReadOnlyGIDs) {
		errs = append(errs, fmt.Errorf("GID %d is in both command_allowed_gids and command_readonly_gids: give it one role", g))
	}
	return errors.Join(errs...)
}

func dupes(a, b []uint32) []uint32 {
	var out []uint32
	for _, v := range a {
		if slices.Contains(b, v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Role returns the role p gives c (None when c is not Known).
func (p Policy) Role(c peercred.Cred) Role {
	r, _ := p.classify(c)
	return r
}

// classify returns c's role and the rule that gave it, in words.
func (p Policy) classify(c peercred.Cred) (Role, string) {
	if !c.Known {
		return None, ""
	}
	uid := c.UID
	if slices.Contains(p.ReadOnlyUIDs, uid) {
		return ReadOnly, fmt.Sprintf("UID %d in command_readonly_uids", uid)
	}
	if p.adminListed() {
		if slices.Contains(p.AllowedUIDs, uid) {
			return Admin, fmt.Sprintf("UID %d in command_allowed_uids", uid)
		}
	} else if uid == 0 {
		return Admin, "UID 0 is root (no command_allowed_uids or command_allowed_gids set)"
	} else if uid == p.SelfUID {
		return Admin, fmt.Sprintf("UID %d is the supervisor's own (no command_allowed_uids or command_allowed_gids set)", uid)
	}
	if g, ok := firstGroup(c, p.AllowedGIDs); ok {
		return Admin, fmt.Sprintf("GID %d in command_allowed_gids", g)
	}
	if g, ok := firstGroup(c, p.ReadOnlyGIDs); ok {
		return ReadOnly, fmt.Sprintf("GID %d in command_readonly_gids", g)
	}
	return None, ""
}

// firstGroup returns the first gid of list that c belongs to.
func firstGroup(c peercred.Cred, list []uint32) (uint32, bool) {
	for _, g := range list {
		if c.InGroup(g) {
			return g, true
		}
	}
	return 0, false
}

// Decision is the answer to one request.
type Decision struct {
	Allowed bool
	Role    Role // the peer's role, whatever the verb
	// Reason says why, for the audit record and the log. A refusal starts
	// with "unauthorized: " and is the FAILURE message for the client;
	// otherwise it names the rule that admitted the peer.
	Reason string
}

// Decide says whether the peer c may run verb (a Request oneof field name,
// as command.VerbKey returns it) under p. It is a pure function: no I/O, no
// clock, safe for concurrent use.
//
// A peer without a role is refused with upstream's message,
// "unauthorized: actor UID <uid|unknown> not in command_allowed_uids",
// followed, when it helps, by the default in force or the other lists
// checked (with the peer's GIDs when a GID list is set). A read-only peer is
// refused admin verbs with "unauthorized: verb <verb> needs the admin role;
// UID <uid> has read-only".
func Decide(p Policy, c peercred.Cred, verb string) Decision {
	role, why := p.classify(c)
	need := Required(verb)
	if role == None {
		return Decision{Role: None, Reason: refusal(p, c)}
	}
	name := verbName(verb)
	if role < need {
		return Decision{Role: role, Reason: fmt.Sprintf("unauthorized: verb %s needs the %s role; UID %d has %s", name, need, c.UID, role)}
	}
	return Decision{Allowed: true, Role: role, Reason: fmt.Sprintf("%s: %s; verb %s needs %s", role, why, name, need)}
}

// verbName shows a verb in a message: table verbs as they are, anything
// else quoted (it never came from the table, so it is not trusted text).
func verbName(verb string) string {
	if isVerb(verb) {
		return verb
	}
	if verb == "" {
		return "(none)"
	}
	return strconv.Quote(verb)
}

func refusal(p Policy, c peercred.Cred) string {
	if !c.Known {
		return "unauthorized: actor UID unknown not in command_allowed_uids (the kernel gave no peer credentials)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "unauthorized: actor UID %d not in command_allowed_uids", c.UID)
	if !p.adminListed() {
		if p.SelfUID == 0 {
			b.WriteString(" (not set: only root is admitted)")
		} else {
			fmt.Fprintf(&b, " (not set: only root and the supervisor's UID %d are admitted)", p.SelfUID)
		}
	}
	var others []string
	if len(p.ReadOnlyUIDs) > 0 {
		others = append(others, "command_readonly_uids")
	}
	if len(p.AllowedGIDs) > 0 {
		others = append(others, "command_allowed_gids")
	}
	if len(p.ReadOnlyGIDs) > 0 {
		others = append(others, "command_readonly_gids")
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, ", nor admitted by %s", strings.Join(others, " or "))
	}
	if len(p.AllowedGIDs) > 0 || len(p.ReadOnlyGIDs) > 0 {
		fmt.Fprintf(&b, " (GIDs %s)", gidList(c))
	}
	return b.String()
}

func gidList(c peercred.Cred) string {
	gids := []string{strconv.FormatUint(uint64(c.GID), 10)}
	for _, g := range c.Groups {
		if g != c.GID {
			gids = append(gids, strconv.FormatUint(uint64(g), 10))
		}
	}
	return strings.Join(gids, ",")
}
