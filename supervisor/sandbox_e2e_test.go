package supervisor_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/sozu-go/sozu/sandbox"
)

func TestWorkersAreConfined(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: workers drop to nobody")
	}
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 2, "")
	p := startProxy(t, dir, cfg, sock)
	c := dial(t, sock)

	pids := runningPIDs(t, c)
	if len(pids) != 2 {
		t.Fatalf("workers: %v", pids)
	}
	for id, pid := range pids {
		threads, err := sandbox.Status(int(pid))
		if err != nil {
			t.Fatalf("worker %d: %v", id, err)
		}
		for _, th := range threads {
			if th.Seccomp != 2 || !th.NoNewPrivs || th.UIDs[0] == 0 || th.UIDs[1] == 0 || th.GIDs[1] == 0 || th.CapEff != 0 {
				t.Errorf("worker %d thread %d: %+v", id, th.TID, th)
			}
		}
	}

	out := p.MustCLI("-j", "sandbox")
	var doc struct {
		Status  string
		Workers []struct {
			UID        int  `json:"uid"`
			Confined   bool `json:"confined"`
			NoNewPrivs bool `json:"no_new_privs"`
			Seccomp    int  `json:"seccomp"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("sozu -j sandbox: %v\n%s", err, out)
	}
	if doc.Status != "OK" || len(doc.Workers) != 2 {
		t.Fatalf("sozu -j sandbox: %s", out)
	}
	for _, w := range doc.Workers {
		if !w.Confined || !w.NoNewPrivs || w.Seccomp != 2 || w.UID == 0 {
			t.Errorf("sozu sandbox reports %+v", w)
		}
	}
}
