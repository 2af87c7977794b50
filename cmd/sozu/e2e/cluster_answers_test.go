package e2e

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestClusterAnswersNeverSent: AddCluster's answers for a status the
// proxy answers before a request reaches a cluster (404, 421…) or never
// answers (507) are kept, as upstream keeps them, but never sent: the OK
// answer says so, naming each, and not the answers that may be sent.
func TestClusterAnswersNeverSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, "")
	sozutest.Start(t, dir, cfgPath, sock)
	c := sozutest.Dial(t, sock)
	body := "<p>custom</p>" // a body: the status line is the default one
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
		ClusterId: proto.String("app"), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false),
		Answers: map[string]string{"404": body, "421": body, "503": body, "507": body, "401": body}}}})
	msg := resp.GetMessage()
	for _, want := range []string{
		"cluster app: answers.404: a cluster's answer for 404 is never sent: the proxy answers 404 before a request reaches a cluster",
		"cluster app: answers.421: a cluster's answer for 421 is never sent",
		"cluster app: answers.507: this proxy never answers 507 itself",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("AddCluster answered %q\nwant it to say %q", msg, want)
		}
	}
	if strings.Contains(msg, "answers.503") || strings.Contains(msg, "answers.401") {
		t.Errorf("AddCluster answered %q: 503 and 401 are a cluster's answers", msg)
	}
	// A cluster whose answers may all be sent: the usual answer.
	resp = c.MustOK(t, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
		ClusterId: proto.String("ok"), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false),
		Answers: map[string]string{"503": body}}}})
	if resp.GetMessage() != "Successfully applied request to all workers" {
		t.Errorf("AddCluster with a 503 answer answered %q", resp.GetMessage())
	}
}
