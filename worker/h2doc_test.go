package worker

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/h2"
)

// TestConfigurationDocH2 (here, not in worker/h2, whose tests may not
// import proto/command: cmd/sozu/layers) keeps the HTTP/2 limits table of
// docs/configuration.md true: it has a row for every h2_* knob of
// HttpsListenerConfig, and each numeric default is DefaultLimits'.
func TestConfigurationDocH2(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## HTTP/2 limits"
	i := strings.Index(string(doc), heading)
	if i < 0 {
		t.Fatalf("docs/configuration.md has no %q section", heading)
	}
	section := string(doc[i+len(heading):])
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	row := regexp.MustCompile("(?m)^\\| `(h2_[a-z0-9_]+)` \\| ([^|]*) \\| ([^|]*) \\|")
	defaults := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		defaults[m[1]] = strings.TrimSpace(m[3])
	}
	d := h2.DefaultLimits()
	want := map[string]uint64{
		"h2_max_rst_stream_per_window":            uint64(d.MaxRstStreamPerWindow),
		"h2_max_ping_per_window":                  uint64(d.MaxPingPerWindow),
		"h2_max_settings_per_window":              uint64(d.MaxSettingsPerWindow),
		"h2_max_empty_data_per_window":            uint64(d.MaxEmptyDataPerWindow),
		"h2_max_window_update_stream0_per_window": uint64(d.MaxWindowUpdateStream0PerWindow),
		"h2_max_continuation_frames":              uint64(d.MaxContinuationFrames),
		"h2_max_glitch_count":                     uint64(d.MaxGlitchCount),
		"h2_max_rst_stream_lifetime":              d.MaxRstStreamLifetime,
		"h2_max_rst_stream_abusive_lifetime":      d.MaxRstStreamAbusiveLifetime,
		"h2_max_rst_stream_emitted_lifetime":      d.MaxRstStreamEmittedLifetime,
		"h2_max_header_list_size":                 uint64(d.MaxHeaderListSize),
		"h2_max_header_table_size":                uint64(d.MaxHeaderTableSize),
		"h2_max_header_fields":                    uint64(d.MaxHeaderFields),
		"h2_max_concurrent_streams":               uint64(d.MaxConcurrentStreams),
		"h2_initial_connection_window":            uint64(d.InitialConnectionWindow),
		"h2_stream_shrink_ratio":                  uint64(d.StreamShrinkRatio),
		"h2_graceful_shutdown_deadline_seconds":   uint64(d.GracefulShutdownDeadline / time.Second),
	}
	fields := (&command.HttpsListenerConfig{}).ProtoReflect().Descriptor().Fields()
	for k := 0; k < fields.Len(); k++ {
		name := string(fields.Get(k).Name())
		if !strings.HasPrefix(name, "h2_") {
			continue
		}
		got, ok := defaults[name]
		if !ok {
			t.Errorf("%s: no row", name)
			continue
		}
		w, numeric := want[name]
		if !numeric {
			continue // described in words (h2_stream_idle_timeout_seconds)
		}
		n, err := strconv.ParseUint(strings.ReplaceAll(strings.Fields(got + " x")[0], "\u202f", ""), 10, 64)
		if err != nil || n != w {
			t.Errorf("%s: default %q in the doc, %d in DefaultLimits", name, got, w)
		}
	}
}
