package supervisor

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
)

// TestAddListenerH2KnobsOutOfRange: add_http(s)_listener from a client
// with an h2_* knob out of its range (state.H2KnobIssues) is refused naming each
// knob, as update_http(s)_listener and the configuration refuse it and as
// upstream refuses a stated listener knob below its floor; a state file
// record with it is taken, as upstream keeps it (dropping the listener
// would take its frontends offline), with a warning saying what a worker
// uses instead.
func TestAddListenerH2KnobsOutOfRange(t *testing.T) {
	var logs bytes.Buffer
	a := &actor{Supervisor: &Supervisor{log: logrus.New()}, state: state.New()}
	a.log.SetOutput(&logs)
	sa := command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:1"))
	reqs := []*command.Request{
		{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{Address: sa,
			H2MaxPingPerWindow: proto.Uint32(0), H2MaxConcurrentStreams: proto.Uint32(20000),
			H2StreamIdleTimeoutSeconds: proto.Uint32(0), H2GracefulShutdownDeadlineSeconds: proto.Uint32(0)}}},
		{RequestType: &command.Request_AddHttpListener{AddHttpListener: &command.HttpListenerConfig{Address: sa,
			H2MaxRstStreamLifetime: proto.Uint64(0), H2StreamShrinkRatio: proto.Uint32(1)}}},
	}
	want := []string{
		"could not dispatch request on the main process state: invalid listener 127.0.0.1:1: " +
			"h2_max_ping_per_window: must be >= 1; h2_max_concurrent_streams: must be <= 10000; " +
			"h2_stream_idle_timeout_seconds: must be >= 1",
		"could not dispatch request on the main process state: invalid listener 127.0.0.1:1: " +
			"h2_stream_shrink_ratio: must be >= 2; h2_max_rst_stream_lifetime: must be >= 1",
	}
	for i, req := range reqs {
		if err := a.validate(req); err == nil || err.Error() != want[i] {
			t.Errorf("%s: %v\nwant %s", command.VerbName(req), err, want[i])
		}
	}

	a.loadingState = true
	for _, req := range reqs {
		if err := a.validate(req); err != nil {
			t.Errorf("%s, state file record: %v", command.VerbName(req), err)
		}
	}
	for _, line := range []string{
		"listener 127.0.0.1:1 (state file record): h2_max_ping_per_window: must be >= 1: a worker uses 1",
		"h2_max_concurrent_streams: must be <= 10000: a worker uses 10000",
		"h2_stream_idle_timeout_seconds: must be >= 1: a worker uses back_timeout, at least 30 s",
		"h2_stream_shrink_ratio: must be >= 2: it is kept as stated: HTTP/2 is served on HTTPS listeners only",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no warning %q in\n%s", line, logs.String())
		}
	}
}
