package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestHostileIdentifiers: identifiers that used to be accepted and then
// broke every save_state (invalid UTF-8, oversize) or the operator's
// terminal (LF, ESC, bidi override) are refused on the command socket with
// the field named and the value escaped; save_state keeps working; and a
// U+202E that reaches the CLI in a text field is printed escaped.
func TestHostileIdentifiers(t *testing.T) {
	dir := t.TempDir()
	cfgPath, sock, httpPort := sozutest.WriteConfig(t, dir, 1, "")
	p := sozutest.Start(t, dir, cfgPath, sock)
	c := sozutest.Dial(t, sock)
	listener := command.NewSocketAddress(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(httpPort)))

	refused := []struct {
		name string
		req  *command.Request
		want string
	}{
		{"cluster id with LF", &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
			ClusterId: proto.String("a\nb"), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false)}}},
			`Invalid value for field 'cluster_id': "a\u{a}b" contains the control character U+000A`},
		{"backend id not UTF-8", &command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
			ClusterId: proto.String("good"), BackendId: proto.String("b\xff"), Address: command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:1026"))}}},
			`Invalid value for field 'backend_id': "b\x{ff}" is not valid UTF-8`},
		{"sticky id of 100 KB", &command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
			ClusterId: proto.String("good"), BackendId: proto.String("b"), Address: command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:1026")),
			StickyId: proto.String(strings.Repeat("s", 100<<10))}}},
			`Invalid value for field 'sticky_id': "` + strings.Repeat("s", 64) + `..." is 102400 bytes long, over the 256-byte limit for identifiers`},
		{"cluster id with ESC and RLO", &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: "\x1b[2Jevil\u202e"}},
			`Invalid value for field 'remove_cluster': "\u{1b}[2Jevil\u{202e}" contains the control character U+001B`},
	}
	for _, tc := range refused {
		_, resp := c.Do(t, tc.req)
		if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.HasSuffix(resp.GetMessage(), tc.want) {
			t.Errorf("%s: %v %q\nwant FAILURE ending with %q", tc.name, resp.GetStatus(), resp.GetMessage(), tc.want)
		}
	}

	c.MustOK(t, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
		ClusterId: proto.String("good"), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false)}}})
	// A text field (not an identifier) may hold U+202E; the CLI shows it
	// escaped.
	c.MustOK(t, &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
		ClusterId: proto.String("good"), Address: listener, Hostname: proto.String("good.test"),
		Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("/\u202egnp.exe")}}}})

	saved := filepath.Join(dir, "saved.state")
	c.MustOK(t, &command.Request{RequestType: &command.Request_SaveState{SaveState: saved}})
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"cluster_id":"good"`) || strings.Contains(string(data), `a\nb`) {
		t.Errorf("saved state: %.400s", data)
	}

	out := p.MustCLI("frontend", "list")
	if strings.ContainsRune(out, '\u202e') || !strings.Contains(out, `/\u{202e}gnp.exe`) {
		t.Errorf("frontend list shows the U+202E raw or not at all:\n%s", out)
	}
	_, errOut, code := p.CLI("cluster", "remove", "--id", "evil\u202egnp")
	if code == 0 || strings.ContainsRune(errOut, '\u202e') || !strings.Contains(errOut, `evil\u{202e}gnp`) {
		t.Errorf("cluster remove of a bidi id: exit %d, stderr %q", code, errOut)
	}
}
