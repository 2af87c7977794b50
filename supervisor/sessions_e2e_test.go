package supervisor_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// auditStart starts a supervisor whose socket is 0660 root:nogroup, with
// a JSON audit trail; extra is more TOML.
func auditStart(t *testing.T, extra string) (p *proxy, sock, jsonPath string) {
	dir := sharedDir(t)
	jsonPath = filepath.Join(dir, "audit.jsonl")
	p, sock = startWith(t, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0]\naudit_logs_json_target = %q\n%s", jsonPath, extra))
	return p, sock, jsonPath
}

// TestNoRoleCannotLockOut: a member of the socket group with no role opens
// many connections; root's status is still answered, the refused
// connections (silent: given no slot, refused after 5 s) are audited, and
// a no-role request is answered then closed.
func TestNoRoleCannotLockOut(t *testing.T) {
	cred := nobody(t)
	p, sock, jsonPath := auditStart(t, "")

	once := startHelper(t, cred, "once", sock, 0)
	once.wait(t, "answer FAILURE")
	once.wait(t, "closed")

	h := startHelper(t, cred, "hold", sock, 300)
	h.wait(t, "held 300")
	if out, errOut, code := p.CLI("status"); code != 0 {
		t.Errorf("root's status while uid %d holds 300 connections: exit %d\n%s%s", cred.Uid, code, out, errOut)
	}
	waitFor(t, 20*time.Second, "a command.refused record of a connection of uid 65534", func() bool {
		for _, r := range auditLines(t, jsonPath) {
			if r["verb"] == "session.connect" && r["result"] == "err" && afield(r, "actor", "uid") == float64(cred.Uid) &&
				strings.Contains(fmt.Sprint(r["reason"]), "unauthorized") {
				return true
			}
		}
		return false
	})
}

// TestRefusalFloodBounded: a read-only peer sends 3 000 refused requests
// as fast as they are answered. The audit trail grows by a bounded amount
// and, once the supervisor stops, holds a summary with the count.
func TestRefusalFloodBounded(t *testing.T) {
	cred := nobody(t)
	p, sock, jsonPath := auditStart(t, fmt.Sprintf("command_readonly_uids = [%d]", cred.Uid))
	fi, err := os.Stat(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()

	const n = 3000
	h := startHelper(t, cred, "spam", sock, n)
	waitFor(t, 120*time.Second, "the flood to end", func() bool { return strings.Contains(h.out.String(), "failures=") })
	h.wait(t, fmt.Sprintf("failures=%d", n))
	if fi, err = os.Stat(jsonPath); err != nil {
		t.Fatal(err)
	}
	if grew := fi.Size() - before; grew > 32<<10 {
		t.Errorf("the audit trail grew by %d bytes for %d refusals; want at most 32 KiB", grew, n)
	}

	p.Stop() // the pending summary is written before the trail closes
	full, summarised := 0, 0
	for _, r := range auditLines(t, jsonPath) {
		if r["code"] != "SZ1002" || afield(r, "actor", "uid") != float64(cred.Uid) {
			continue
		}
		if r["error_code"] == "refusals_suppressed" {
			var k int
			if _, err := fmt.Sscanf(fmt.Sprint(r["reason"]), "%d refusals", &k); err != nil {
				t.Errorf("summary reason %q: %v", r["reason"], err)
			}
			summarised += k
			continue
		}
		full++
	}
	if full+summarised != n || summarised == 0 {
		t.Errorf("%d refusals recorded in full and %d in summaries; want %d in all, most summarised", full, summarised, n)
	}
}

// TestIdleSessionClosed: a session that sends nothing for
// command_session_idle_timeout is closed; an event subscription is not.
func TestIdleSessionClosed(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "command_session_idle_timeout = 1")
	startProxy(t, dir, cfg, sock)

	sub := dial(t, sock)
	idle := dial(t, sock)
	if err := frame.WriteMessage(sub.Conn, &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}, frame.DefaultMaxSize); err != nil {
		t.Fatal(err)
	}
	sub.MustOK(t, statusRequest()) // the subscription is in place

	idle.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := frame.NewReader(idle.Conn, frame.DefaultMaxSize)
	var err error
	for err == nil {
		err = r.ReadMessage(&command.Response{})
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle session: %v, want it closed by the supervisor", err)
	}
	sub.MustOK(t, statusRequest()) // still served after the idle one was cut
}

// TestNoRolePeersTakeNoSlots: members of the socket group with no role
// that connect and send nothing (reconnecting before the idle timeout
// would keep them there for good) must not take the session slots of the
// peers that have a role. Two no-role uids holding 120 connections each
// (command_max_sessions_per_uid = 120) are 240 of the 256 slots, the 16
// left being kept for admins: a read-only operator must still be served.
func TestNoRolePeersTakeNoSlots(t *testing.T) {
	noRole := nobody(t)
	_, other := createUser(t)
	_, reader := createUser(t)
	for _, c := range []*syscall.Credential{other, reader} {
		c.Groups = []uint32{65534} // nogroup: the socket's group
	}
	p, sock, _ := auditStart(t, fmt.Sprintf("command_max_sessions_per_uid = 120\ncommand_readonly_uids = [%d]", reader.Uid))
	for _, cred := range []*syscall.Credential{noRole, other} {
		h := startHelper(t, cred, "hold", sock, 120)
		h.wait(t, "held 120")
	}
	if out, errOut, code := p.CLIAs(reader, "status"); code != 0 {
		t.Errorf("a read-only operator's status while two no-role uids hold 120 connections each: exit %d\n%s%s", code, out, errOut)
	}
}

// TestQueryFloodBounded: a read-only peer polls status 2 000 times as fast
// as it is answered. Its query records are bounded (120 a minute in full,
// then one summary with the count, written when the supervisor stops);
// an admin's queries are all recorded.
func TestQueryFloodBounded(t *testing.T) {
	cred := nobody(t)
	p, sock, jsonPath := auditStart(t, fmt.Sprintf("command_readonly_uids = [%d]", cred.Uid))
	fi, err := os.Stat(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()

	const n = 2000
	h := startHelper(t, cred, "poll", sock, n)
	waitFor(t, 120*time.Second, "the polling to end", func() bool { return strings.Contains(h.out.String(), "ok=") })
	h.wait(t, fmt.Sprintf("ok=%d", n))
	if fi, err = os.Stat(jsonPath); err != nil {
		t.Fatal(err)
	}
	if grew := fi.Size() - before; grew > 256<<10 {
		t.Errorf("the audit trail grew by %d bytes for %d read-only queries; want at most 256 KiB", grew, n)
	}
	const admin = 150 // more than the read-only burst: none is left out
	rootPoll := startHelper(t, nil, "poll", sock, admin)
	rootPoll.wait(t, fmt.Sprintf("ok=%d", admin))

	p.Stop() // the pending summary is written before the trail closes
	full, summarised, rootQueries := 0, 0, 0
	for _, r := range auditLines(t, jsonPath) {
		if r["code"] != "SZ1005" {
			continue
		}
		switch uid := afield(r, "actor", "uid"); {
		case uid == float64(0) && r["verb"] == "status.get":
			rootQueries++
		case uid != float64(cred.Uid):
		case r["error_code"] == "queries_suppressed":
			var k int
			if _, err := fmt.Sscanf(fmt.Sprint(r["reason"]), "%d queries", &k); err != nil {
				t.Errorf("summary reason %q: %v", r["reason"], err)
			}
			summarised += k
		default:
			full++
		}
	}
	if full+summarised != n || full > 2*120 {
		t.Errorf("read-only queries: %d recorded in full, %d summarised; want %d in all, at most 240 in full", full, summarised, n)
	}
	if rootQueries != admin {
		t.Errorf("root's queries: %d recorded, want %d", rootQueries, admin)
	}
}
