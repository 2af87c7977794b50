package e2e

import (
	"strings"
	"testing"
	"time"

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
	// The answer says which directives have no effect (module
	// directives: the whole log is at one level).
	for _, tc := range []struct{ spec, note string }{
		{"info,sozu::http=debug", "\nwithout effect: sozu::http=debug (module directives name upstream's Rust modules; the whole log is at info)"},
		{"warn, sozu=trace", "\nwithout effect: sozu=trace ("},
		{"debug,sozu=debug", ""},
		{"debug", ""},
	} {
		r := logging(tc.spec)
		if r.GetStatus() != command.ResponseStatus_OK {
			t.Fatalf("Logging %q: %v %q", tc.spec, r.GetStatus(), r.GetMessage())
		}
		if _, note, _ := strings.Cut(r.GetMessage(), "\n"); !strings.HasPrefix("\n"+note, tc.note) || tc.note == "" && note != "" {
			t.Errorf("Logging %q answered %q, want the note %q", tc.spec, r.GetMessage(), tc.note)
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

// TestLoggingCLI: `sozu logging FILTER` sets a filter the proxy accepts
// (exit 0, LOGGING_LEVEL_CHANGED follows) and refuses one it would refuse
// before sending anything (exit 2, the parser's problems listed; no event,
// no audit attempt).
func TestLoggingCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 2, "")
	p := sozutest.Start(t, dir, cfgPath, sock)
	evs := subscribeEvents(t, sock)
	if out := p.MustCLI("logging", "warn,sozu::http=debug"); !strings.Contains(out, "without effect: sozu::http=debug (") {
		t.Errorf("sozu logging printed %q, not the directive without effect", out)
	}
	sozutest.WaitFor(t, 10*time.Second, "LOGGING_LEVEL_CHANGED", func() bool {
		return evs.count(command.EventKind_LOGGING_LEVEL_CHANGED, "", "") == 1
	})
	out, errOut, code := p.CLI("logging", "loud")
	if code != 2 || out != "" || !strings.Contains(errOut, `- invalid level "loud" in directive "loud"`) {
		t.Fatalf("sozu logging loud: exit %d, want 2 with the parser's problem\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// A later accepted change is the second event: the refused one sent none.
	p.MustCLI("logging", "info")
	sozutest.WaitFor(t, 10*time.Second, "the second LOGGING_LEVEL_CHANGED", func() bool {
		return evs.count(command.EventKind_LOGGING_LEVEL_CHANGED, "", "") == 2
	})
	if strings.Contains(p.Out.String(), "loud") {
		t.Errorf("the refused filter reached the proxy:\n%s", p.Out.String())
	}
}
