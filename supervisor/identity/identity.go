// Package identity is who is on the other end of a command-socket connection:
// the envelope attached to every request it sends, for audit records and logs.
package identity

import (
	"fmt"
	"net"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sozu-go/sozu/peercred"
	"github.com/sozu-go/sozu/supervisor/admission"
)

// Identity is the envelope attached to every request read on one
// command-socket connection, for audit records and log lines: who connected
// (as the kernel saw it), what they are called, what role they have, and
// when and where they connected. It is built once per connection, at
// accept, by a Resolver and is immutable afterwards: share it freely, but
// do not modify Groups.
//
// Comm and User are Unknown ("unknown") when they could not be established
// for sure; Comm is chosen by the peer and User comes from the name
// service: both are untrusted text, to be escaped before display.
type Identity struct {
	Session ulid.ULID // unique per connection; sorts by connect time
	Client  uint64    // the supervisor's per-accept counter (the "session" of its logs)

	peercred.Cred // Known, UID, GID, Groups, PID, Start as captured at accept

	Comm      string         // process name, or peercred.Unknown
	User      string         // user name of UID, or peercred.Unknown
	Role      admission.Role // role the policy gives this peer, whatever the verb
	Socket    string         // path of the command socket
	Connected time.Time      // when the connection was accepted
}

// Fields returns the identity as log fields (assignable to logrus.Fields),
// under stable keys: session, client, uid, gid, groups, pid, comm, user,
// role, socket, connected. A peer without credentials has uid "unknown" and
// no gid, groups or pid. The map is fresh; the caller owns it.
func (id Identity) Fields() map[string]any {
	f := map[string]any{
		"session":   id.Session.String(),
		"client":    id.Client,
		"uid":       peercred.Unknown,
		"comm":      id.Comm,
		"user":      id.User,
		"role":      id.Role.String(),
		"socket":    id.Socket,
		"connected": id.Connected.UTC().Format(time.RFC3339Nano),
	}
	if id.Known {
		f["uid"] = id.UID
		f["gid"] = id.GID
		f["pid"] = id.PID
		if id.Groups != nil {
			f["groups"] = append([]uint32(nil), id.Groups...)
		}
	}
	return f
}

// String formats the identity on one line for messages:
// `uid=65534 user="nobody" gid=65534 pid=4242 comm="sleep" role=read-only session=01J…`.
// The user and comm are quoted (Go syntax), so control characters are escaped.
func (id Identity) String() string {
	if !id.Known {
		return fmt.Sprintf("uid=unknown role=%s session=%s", id.Role, id.Session)
	}
	return fmt.Sprintf("uid=%d user=%q gid=%d pid=%d comm=%q role=%s session=%s",
		id.UID, id.User, id.GID, id.PID, id.Comm, id.Role, id.Session)
}

// Resolver builds the Identity of each accepted connection. Set its fields
// before the first Resolve and do not change them afterwards; Resolve is
// then safe for concurrent use.
type Resolver struct {
	Socket string           // command socket path, copied into every Identity
	Policy admission.Policy // gives the Role
	Proc   peercred.Proc    // where process facts come from; zero: /proc
	Users  *peercred.Users  // user names; nil: User is always Unknown

	NewID func() ulid.ULID // session ids; nil: ulid.Make (monotonic, concurrency-safe)
	Now   func() time.Time // nil: time.Now
}

// Resolve identifies the peer of conn, accepted as client number client.
// It captures the kernel credentials and the process start time first, then
// reads the comm and looks up the user name: it blocks at most the user
// lookup timeout, so call it from the connection's own goroutine, not from
// the accept loop.
//
// It always returns a usable Identity. When the kernel gives no credentials
// the Identity has Known false and role None (every verb is refused), and
// err says why, naming the socket, for the log.
func (r *Resolver) Resolve(conn *net.UnixConn, client uint64) (Identity, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	newID := ulid.Make
	if r.NewID != nil {
		newID = r.NewID
	}
	id := Identity{
		Session:   newID(),
		Client:    client,
		Comm:      peercred.Unknown,
		User:      peercred.Unknown,
		Socket:    r.Socket,
		Connected: now(),
	}
	c, err := r.Proc.FromConn(conn)
	if err != nil {
		return id, err
	}
	id.Cred = c
	id.Comm = r.Proc.Comm(c)
	if r.Users != nil {
		id.User = r.Users.Name(c.UID)
	}
	id.Role = r.Policy.Role(c)
	return id, nil
}
