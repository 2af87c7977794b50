package e2e

import (
	"strings"
	"testing"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestLoggingFilterSameEverywhere: a Logging filter the supervisor accepts
// (module directives included) is accepted by every worker, so the verb
// succeeds; one it refuses is refused before any worker sees it, with the
// same message, and the workers keep serving.
func TestLoggingFilterSameEverywhere(t *testing.T) {
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 2, "")
	p := sozutest.Start(t, dir, cfgPath, sock)
	c := sozutest.Dial(t, sock)
	logging := func(spec string) *command.Response {
		_, resp := c.Do(t, &command.Request{RequestType: &command.Request_Logging{Logging: spec}})
		return resp
	}
	for _, spec := range []string{"info,sozu::http=debug", "warn, sozu=trace", "debug"} {
		if r := logging(spec); r.GetStatus() != command.ResponseStatus_OK {
			t.Fatalf("Logging %q: %v %q", spec, r.GetStatus(), r.GetMessage())
		}
	}
	for _, spec := range []string{"info,=debug", "loud", ""} {
		r := logging(spec)
		if r.GetStatus() != command.ResponseStatus_FAILURE || !strings.HasPrefix(r.GetMessage(), "Error parsing logging filter:\n- ") {
			t.Fatalf("Logging %q: %v %q, want the supervisor's refusal", spec, r.GetStatus(), r.GetMessage())
		}
		if strings.Contains(r.GetMessage(), "worker") {
			t.Fatalf("Logging %q reached a worker: %q", spec, r.GetMessage())
		}
	}
	c.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	if out := p.Out.String(); strings.Contains(out, "invalid log level") {
		t.Fatalf("a worker refused a filter:\n%s", out)
	}
}
