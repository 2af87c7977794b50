package admission

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

var update = flag.Bool("update", false, "rewrite docs/roles.md from the verb catalogue")

const rolesDoc = "../../docs/roles.md"

// requestVerbs returns the fields of the Request oneof, by field number.
func requestVerbs(t *testing.T) []protoreflect.FieldDescriptor {
	t.Helper()
	oneof := (&command.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("request_type")
	if oneof == nil {
		t.Fatal("command.Request has no oneof request_type")
	}
	var out []protoreflect.FieldDescriptor
	for i := range oneof.Fields().Len() {
		out = append(out, oneof.Fields().Get(i))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number() < out[j].Number() })
	return out
}

// TestVerbTableComplete: every verb of command.Request has a role, and the
// table names no verb that does not exist; VerbKey agrees with the keys.
func TestVerbTableComplete(t *testing.T) {
	fields := requestVerbs(t)
	seen := map[string]bool{}
	for _, fd := range fields {
		name := string(fd.Name())
		seen[name] = true
		if !isVerb(name) {
			t.Errorf("verb %s (Request field %d) is not in the verb catalogue (proto/verbs)", name, fd.Number())
		}
		// command.VerbKey, which the supervisor passes to Decide, gives this key.
		req := &command.Request{}
		m := req.ProtoReflect()
		var v protoreflect.Value
		if fd.Kind() == protoreflect.MessageKind {
			v = protoreflect.ValueOfMessage(m.NewField(fd).Message())
		} else {
			v = m.NewField(fd)
		}
		m.Set(fd, v)
		if got := command.VerbKey(req); got != name {
			t.Errorf("VerbKey of a %s request = %q", name, got)
		}
	}
	for verb := range seen {
		if role := Required(verb); role != ReadOnly && role != Admin {
			t.Errorf("verb %s needs role %v: only read-only and admin are meaningful", verb, role)
		}
	}
}

// TestRolesDoc keeps docs/roles.md equal to the verb table
// (go test ./supervisor/admission -run TestRolesDoc -update rewrites it).
func TestRolesDoc(t *testing.T) {
	got := renderRolesDoc(requestVerbs(t))
	if *update {
		if err := os.WriteFile(rolesDoc, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(rolesDoc)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the verb catalogue: run go test ./supervisor/admission -run TestRolesDoc -update", filepath.Clean(rolesDoc))
	}
}

func renderRolesDoc(fields []protoreflect.FieldDescriptor) []byte {
	var b bytes.Buffer
	b.WriteString(`# Command-socket roles

<!-- Generated from the verb catalogue (proto/verbs) by
     go test ./supervisor/admission -run TestRolesDoc -update
     Do not edit by hand. -->

Every request on the command socket is checked against the peer's role
before it is handled. A refusal answers FAILURE with a message starting
` + "`unauthorized: `" + ` and is recorded in the audit trail (` + "`command.refused`" + `). A
read-only peer refused an admin verb keeps its connection; a peer with no
role is answered once, then its connection is closed.

## Who gets which role

The peer's uid, primary gid and supplementary gids are the ones the kernel
recorded when it connected (SO_PEERCRED, SO_PEERGROUPS). First match wins:

1. uid in ` + "`command_readonly_uids`" + ` → read-only (also when the uid is in
   ` + "`command_allowed_uids`" + ` or in an admin group: least privilege);
2. uid in ` + "`command_allowed_uids`" + ` → admin. When neither
   ` + "`command_allowed_uids`" + ` nor ` + "`command_allowed_gids`" + ` is set, root (uid 0) and
   the supervisor's own uid are admin instead, and no one else;
3. a gid in ` + "`command_allowed_gids`" + ` → admin;
4. a gid in ` + "`command_readonly_gids`" + ` → read-only;
5. otherwise refused: ` + "`unauthorized: actor UID <uid> not in command_allowed_uids`" + `.

Only peers that can open the socket are checked at all: it is 0600, or 0660
with ` + "`command_socket_group`" + `. Its directory must be owned by root or the
supervisor's uid and writable by neither its group nor others (` + "`sozu start`" + `
refuses otherwise): a member of ` + "`command_socket_group`" + ` may connect, never
replace the socket. The CLI, for its part, sends nothing to a socket whose
listening process runs as a uid other than root, its own, or the owner of a
socket directory only its owner may write in, reached by a path that owner
did not make itself in a shared directory such as ` + "`/tmp`" + ` (a link or a
directory there names no one), and whose links are owned by root or that
owner.

## Sessions

* At most 256 sessions are open at once; the last 16 are kept for admins,
  so peers without the admin role can never take them all.
* One uid holds at most ` + "`command_max_sessions_per_uid`" + ` sessions (default 16),
  whatever its role.
* A connection beyond a limit is answered one FAILURE naming the limit,
  closed, and recorded (` + "`command.refused`" + `, verb ` + "`session.connect`" + `, with the
  peer's uid, gid, pid, user and comm).
* A peer with no role takes no session slot: it is given
  5 s to send its request, answered the refusal, recorded (` + "`command.refused`" + `;
  verb ` + "`session.connect`" + ` when it sent nothing) and closed. At most 16
  connections are being refused at once; beyond that a connection is closed
  at once and only counted in its uid's refusal summary.
* A session that sends nothing for ` + "`command_session_idle_timeout`" + ` (default
  60 s; 0 = never) is told so and closed. An event subscription
  (` + "`subscribe_events`" + `) is a stream: it is never closed as idle, but it still
  counts against its uid's sessions.
* A peer without the admin role sends frames of at most 64 KiB (its verbs
  need a few hundred bytes; an admin's limit is ` + "`max_command_buffer_size`" + `): a
  request is decoded before admission, and a smaller frame is less to read
  and decode only to refuse. A longer frame is answered
  ` + "`invalid frame: frame length <n> exceeds maximum 65536 for a peer without the admin role`" + `,
  recorded (` + "`frame.invalid`" + `) and its connection closed, before any of it is read.
  For every role, a frame that would take more than 2 × its size + 1 MiB
  of memory once decoded (protobuf decodes a list of empty messages into
  some 50 times its size) is refused before decoding, naming the field and
  its count ([protocol.md](protocol.md) §1.3).

## Refusal records

Refusals (verbs, frames, connections) are recorded in full up to 10 per uid
per minute; the rest of that minute's refusals of the uid are counted, and
one ` + "`command.refused`" + ` record, verb ` + "`session.refusals_suppressed`" + `, error code
` + "`refusals_suppressed`" + `, gives their number, the uid and the span when the minute
ends (or when the supervisor stops). A refusal record repeats at most 128
bytes of each request field (target, cluster, backend); its request SHA-256
identifies the whole request. So a peer flooding refusals adds a bounded
amount to the fail-closed trail, and every refusal is still accounted for.

## Verbs

A verb not in this table (a future one) needs admin.

| Verb (Request field) | Field | Role needed |
|---|---|---|
`)
	for _, fd := range fields {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", fd.Name(), fd.Number(), Required(string(fd.Name())))
	}
	return b.Bytes()
}
