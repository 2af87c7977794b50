package main

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// TestRunAnswersSendFileContent: the answer templates named by --answer
// and --answer-503 reach the socket as the files' content; a file the CLI
// cannot read is a usage error naming the flag and the file, and nothing
// is sent.
func TestRunAnswersSendFileContent(t *testing.T) {
	dir := t.TempDir()
	tpl404 := "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
	tpl503 := "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
	for name, body := range map[string]string{"404.http": tpl404, "503.http": tpl503} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []*command.Request
	path := serve(t, func(req *command.Request) []*command.Response {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		return []*command.Response{resp(ok, "done", nil)}
	})
	run := func(args ...string) int {
		a, _, _ := testApp(t)
		withSocket(a, path)
		return a.run(args)
	}
	if code := run("cluster", "add", "--id", "shop", "--answer", "404="+filepath.Join(dir, "404.http"), "--answer-503", filepath.Join(dir, "503.http")); code != exitOK {
		t.Fatalf("cluster add: exit %d", code)
	}
	if code := run("listener", "https", "update", "--address", "127.0.0.1:8443", "--answer", "503="+filepath.Join(dir, "503.http")); code != exitOK {
		t.Fatalf("listener https update: exit %d", code)
	}
	mu.Lock()
	c, l := got[0].GetAddCluster(), got[1].GetUpdateHttpsListener()
	mu.Unlock()
	if c.GetAnswers()["404"] != tpl404 || c.GetAnswer_503() != tpl503 || l.GetAnswers()["503"] != tpl503 {
		t.Errorf("sent cluster answers %q, answer_503 %q; listener answers %q", c.GetAnswers(), c.GetAnswer_503(), l.GetAnswers())
	}

	a, out, errOut := testApp(t)
	withSocket(a, path)
	missing := filepath.Join(dir, "missing.http")
	if code := a.run([]string{"cluster", "add", "--id", "shop", "--answer", "503=" + missing}); code != exitUsage || out.Len() != 0 {
		t.Errorf("missing file: exit %d, stdout %q", code, out)
	}
	if want := "sozu cluster add: --answer " + missing + ": open: no such file or directory\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Errorf("%d requests sent, want 2 (none for the missing file)", len(got))
	}
}
