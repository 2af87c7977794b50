package supervisor

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/config"
)

// TestReloadAnswerPartWay: when a step fails part-way (a refusal at apply
// time, or a worker's error), the answer is a failure naming exactly which
// steps were applied, which were not, and which worker failed which step.
func TestReloadAnswerPartWay(t *testing.T) {
	cfg, err := config.Parse([]byte("command_socket = \"s.sock\"\n"), "/etc/sozu/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Supervisor{cfg: cfg}
	plan := &reloadPlan{
		steps: []reloadStep{
			{cluster("api"), "cluster api"},
			{backend("api", "api-0", "10.0.0.9:80"), "backend api/api-0 10.0.0.9:80"},
			{front("127.0.0.1:80", "api.test", "api"), "frontend http 127.0.0.1:80;api.test;P → api"},
		},
		added: []string{"cluster api", "backend api/api-0 10.0.0.9:80", "frontend http 127.0.0.1:80;api.test;P → api"},
	}
	okResp := &command.WorkerResponse{Id: proto.String("x"), Status: command.ResponseStatus_OK.Enum(), Message: proto.String("")}
	badResp := &command.WorkerResponse{Id: proto.String("x"), Status: command.ResponseStatus_FAILURE.Enum(), Message: proto.String("no such cluster")}
	for _, tc := range []struct {
		name string
		run  *reloadRun
		outs [][]outcome
		ok   bool
		want []string
	}{
		{
			name: "all applied",
			run:  &reloadRun{id: "R1", plan: plan, applied: 3},
			outs: [][]outcome{{{worker: 0, resp: okResp}}, {{worker: 0, resp: okResp}}, {{worker: 0, resp: okResp}}},
			ok:   true,
			want: []string{"Successfully loaded the config: 3 ok, 0 errors (reload R1 of /etc/sozu/config.toml: 3 added, 0 changed, 0 removed)", "added:\n  cluster api\n"},
		},
		{
			name: "stopped at step 2",
			run:  &reloadRun{id: "R2", plan: plan, applied: 1, applyErr: errors.New("cannot bind")},
			outs: [][]outcome{{{worker: 0, resp: okResp}}},
			want: []string{"loading the config failed: 1 ok, 0 errors", "stopped at step 2/3 (AddBackend, backend api/api-0 10.0.0.9:80): cannot bind", "steps 1-1 were applied; steps 2-3 were not"},
		},
		{
			name: "a worker fails step 3, another misses its deadline",
			run:  &reloadRun{id: "R3", plan: plan, applied: 3},
			outs: [][]outcome{{{worker: 0, resp: okResp}}, {{worker: 0, resp: okResp}}, {{worker: 0, resp: badResp}, {worker: 1, err: "did not answer within 10s"}}},
			want: []string{"loading the config failed: 2 ok, 1 errors", "some workers failed:\n  step 3/3 (AddHttpFrontend, frontend http 127.0.0.1:80;api.test;P → api): 0: no such cluster, 1: worker 1 did not answer within 10s"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := s.reloadAnswer(cfg.Path, cfg, tc.run, tc.outs)
			if ok != tc.ok {
				t.Errorf("ok %v, want %v", ok, tc.ok)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("answer lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}
