package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// inflatingFrame is a frame of about size bytes holding an
// add_http_frontend whose header list is made of empty headers: two bytes
// each on the wire, some hundred bytes each once decoded.
func inflatingFrame(size int) []byte {
	var inner []byte
	for len(inner) < size-32 {
		inner = protowire.AppendTag(inner, 15, protowire.BytesType) // RequestHttpFrontend.headers
		inner = protowire.AppendBytes(inner, nil)
	}
	b := make([]byte, frame.PrefixSize, size)
	b = protowire.AppendTag(b, 15, protowire.BytesType) // Request.add_http_frontend
	b = protowire.AppendBytes(b, inner)
	binary.LittleEndian.PutUint64(b, uint64(len(b)))
	return b
}

// TestNonAdminFramesCannotInflate: a read-only peer (uid 65534) sends, on
// 15 of the 16 sessions its uid may hold, frames just under the 2 MB maximum
// that protobuf would decode into some 100 MB each (an admin verb's list
// of empty messages: the request is decoded before admission refuses it).
// The supervisor must not grow by gigabytes for a peer that may only
// read: each such frame is refused by its length prefix, with a FAILURE
// naming the limit, before any of it is decoded; so are those of a peer
// with no role, read once before its refusal. The read-only peer's small
// queries are still served, and an admin's 1.5 MB request still is.
func TestNonAdminFramesCannotInflate(t *testing.T) {
	cred := nobodyCred(t)
	dir := searchableDir(t)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, readOnlyAdmission(cred.Uid))
	p := sozutest.Start(t, dir, cfgPath, sock)
	pid := p.Cmd.Process.Pid
	before := vmHWM(t, pid)

	const sessions, rounds = 15, 3
	bomb := inflatingFrame(frame.DefaultMaxSize - 64)
	clients := make([]*sozutest.Client, sessions)
	for i := range clients {
		clients[i] = sozutest.DialAs(t, cred, sock)
	}
	var wg sync.WaitGroup
	answers := make([]string, sessions)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := frame.NewReader(c.Conn, frame.DefaultMaxSize)
			for range rounds {
				c.Conn.SetDeadline(time.Now().Add(60 * time.Second))
				go c.Conn.Write(bomb) // may fail once the supervisor closes
				resp := &command.Response{}
				if err := r.ReadMessage(resp); err != nil {
					return // closed after its refusal
				}
				answers[i] = resp.GetStatus().String() + " " + resp.GetMessage()
				if !strings.Contains(resp.GetMessage(), "needs the admin role") {
					return // refused as a frame: the connection is closed
				}
			}
		}()
	}
	wg.Wait()
	grown := vmHWM(t, pid) - before
	t.Logf("supervisor peak RSS grew by %d MiB; an answer: %q", grown>>10, answers[0])
	if grown > 128<<10 {
		t.Errorf("a read-only peer's frames grew the supervisor's peak RSS by %d MiB (want < 128)", grown>>10)
	}
	if want := "exceeds maximum 65536 for a peer without the admin role"; !strings.Contains(answers[0], want) {
		t.Errorf("answer %q, want a FAILURE containing %q", answers[0], want)
	}
	// A member of the socket's group with no role (uid 12345) is read one
	// request before its refusal: the same bound.
	before = vmHWM(t, pid)
	noRole := &syscall.Credential{Uid: 12345, Gid: cred.Gid}
	for range 16 {
		c := sozutest.DialAs(t, noRole, sock)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Conn.Close()
			c.Conn.SetDeadline(time.Now().Add(60 * time.Second))
			go c.Conn.Write(bomb)
			frame.NewReader(c.Conn, frame.DefaultMaxSize).ReadMessage(&command.Response{})
		}()
	}
	wg.Wait()
	if grown := vmHWM(t, pid) - before; grown > 128<<10 {
		t.Errorf("no-role peers' frames grew the supervisor's peak RSS by %d MiB (want < 128)", grown>>10)
	}
	// The same peer's queries are served; an admin's large request too.
	ro := sozutest.DialAs(t, cred, sock)
	ro.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	admin := sozutest.Dial(t, sock)
	_, resp := admin.Do(t, &command.Request{RequestType: &command.Request_QueryClusterById{QueryClusterById: strings.Repeat("y", 1_500_000)}})
	if strings.Contains(resp.GetMessage(), "exceeds maximum") {
		t.Errorf("an admin's 1.5 MB request was refused as too large: %q", resp.GetMessage())
	}
}

// TestStatusShowsReadOnlyNoReloadError: an admin reloads a file whose
// header value was left unquoted (value = <token>); the TOML parser's
// error quotes the token, and the reload's answer to that admin shows it.
// A read-only peer's `sozu status` tells that the last reload failed, not
// why: the error quotes the file, which that peer may not read; nor does
// the STATUS= line sent to systemd, which any local user reads. (The
// parser quotes a bare word up to its first non-letter: "s3cret…" would
// show "s".)
func TestStatusShowsReadOnlyNoReloadError(t *testing.T) {
	cred := nobodyCred(t)
	dir := searchableDir(t)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, readOnlyAdmission(cred.Uid))
	if err := os.Chmod(cfgPath, 0o644); err != nil { // the CLI reads its client keys
		t.Fatal(err)
	}
	// systemd shows STATUS= to every local user (systemctl status).
	notifyPath := filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var notes sozutest.SyncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := l.Read(buf)
			if err != nil {
				return
			}
			notes.Write(append(buf[:n:n], '\n'))
		}
	}()
	p := sozutest.StartWith(t, dir, cfgPath, sock, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	})
	const token = "sEcretTOKEN"
	next := filepath.Join(t.TempDir(), "next.toml") // root's only
	if err := os.WriteFile(next, []byte(fmt.Sprintf(`[clusters.app]
protocol = "http"
backends = [ { address = "127.0.0.1:9" } ]

[[clusters.app.frontends]]
address = "127.0.0.1:%d"
hostname = "app.test"

[[clusters.app.frontends.headers]]
position = "request"
key = "Authorization"
value = %s
`, sozutest.FreePort(t), token)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := p.CLI("reload", "-f", next); code == 0 {
		t.Fatalf("reload of a broken file: exit 0\n%s%s", out, errOut)
	}
	if st := p.MustCLI("status"); !strings.Contains(st, token) {
		t.Errorf("an admin's status does not say why the reload failed:\n%s", st)
	}
	out, errOut, code := p.CLIAs(cred, "status")
	if code != 0 || !strings.Contains(out, "last reload: ") || !strings.Contains(out, " failed") {
		t.Errorf("read-only status: exit %d, no failed reload line\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, token) {
		t.Errorf("a read-only peer's status shows the reloaded file's content:\n%s%s", out, errOut)
	}
	sozutest.WaitFor(t, 10*time.Second, "the notification of the failed reload", func() bool {
		return strings.Contains(notes.String(), "STATUS=last reload")
	})
	if strings.Contains(notes.String(), token) {
		t.Errorf("the systemd status shows the reloaded file's content:\n%s", notes.String())
	}
}
