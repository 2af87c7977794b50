package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/h2"
)

// TestH2UpdateFlags: `listener http|https update` has a flag per h2_* field
// of UpdateHttpsListenerConfig (the key with dashes, as upstream's CLI
// spells it), and the default each help text gives is h2.DefaultLimits'.
func TestH2UpdateFlags(t *testing.T) {
	d := h2.DefaultLimits()
	want := map[string]uint64{
		"h2-max-rst-stream-per-window": uint64(d.MaxRstStreamPerWindow), "h2-max-ping-per-window": uint64(d.MaxPingPerWindow),
		"h2-max-settings-per-window": uint64(d.MaxSettingsPerWindow), "h2-max-empty-data-per-window": uint64(d.MaxEmptyDataPerWindow),
		"h2-max-window-update-stream0-per-window": uint64(d.MaxWindowUpdateStream0PerWindow),
		"h2-max-continuation-frames":              uint64(d.MaxContinuationFrames), "h2-max-glitch-count": uint64(d.MaxGlitchCount),
		"h2-initial-connection-window": uint64(d.InitialConnectionWindow), "h2-max-concurrent-streams": uint64(d.MaxConcurrentStreams),
		"h2-stream-shrink-ratio": uint64(d.StreamShrinkRatio), "h2-max-rst-stream-lifetime": d.MaxRstStreamLifetime,
		"h2-max-rst-stream-abusive-lifetime": d.MaxRstStreamAbusiveLifetime, "h2-max-rst-stream-emitted-lifetime": d.MaxRstStreamEmittedLifetime,
		"h2-max-header-list-size": uint64(d.MaxHeaderListSize), "h2-max-header-table-size": uint64(d.MaxHeaderTableSize),
		"h2-max-header-fields":                  uint64(d.MaxHeaderFields),
		"h2-graceful-shutdown-deadline-seconds": uint64(d.GracefulShutdownDeadline / time.Second),
	}
	dflt := regexp.MustCompile(`default (\d+)\)$`)
	flags := map[string]*flagSpec{}
	for _, f := range h2UpdateFlags {
		flags[f.long] = f
	}
	fields := (&command.UpdateHttpsListenerConfig{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		name := string(fields.Get(i).Name())
		if !strings.HasPrefix(name, "h2_") {
			continue
		}
		long := strings.ReplaceAll(name, "_", "-")
		f := flags[long]
		if f == nil {
			t.Errorf("no --%s", long)
			continue
		}
		w, ok := want[long]
		if !ok {
			continue // h2-stream-idle-timeout-seconds: back_timeout, at least 30
		}
		m := dflt.FindStringSubmatch(f.help)
		if m == nil {
			t.Errorf("--%s: no default in %q", long, f.help)
			continue
		}
		if n, _ := strconv.ParseUint(m[1], 10, 64); n != w {
			t.Errorf("--%s: help says default %d, DefaultLimits %d", long, n, w)
		}
	}
	if len(flags) != len(want)+1 {
		t.Errorf("%d h2 flags, want %d", len(flags), len(want)+1)
	}
}
