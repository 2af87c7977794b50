package h2

// FloodClass is a class of flood budget (docs/architecture.md, HTTP/2
// limits): Stats.Floods counts, per class, the connections ended with
// GOAWAY(ENHANCE_YOUR_CALM) for breaking it.
type FloodClass uint8

const (
	FloodOther          FloodClass = iota // a calm GOAWAY whose reason is not classified (kept at 0 so a new reason is still counted)
	FloodRapidReset                       // RST_STREAM per window, per connection, or before a response (CVE-2023-44487)
	FloodMadeYouReset                     // RST_STREAM we were made to send (CVE-2025-8671)
	FloodContinuation                     // CONTINUATION frames per header block (CVE-2024-27316)
	FloodHeaders                          // header block bytes, header fields, header list size (HPACK bombs)
	FloodPing                             // PING per window
	FloodSettings                         // SETTINGS per window, entries per frame
	FloodEmptyData                        // empty DATA per window
	FloodWindowUpdate                     // WINDOW_UPDATE granting credit beyond the DATA sent, per window
	FloodGlitches                         // protocol glitches per window (half-decaying, as upstream's glitch_window)
	FloodControlBacklog                   // control frames the peer does not read
	FloodPriority                         // PRIORITY, PRIORITY_UPDATE and unknown (extension) frames per window (upstream's priority)
	NumFloodClasses
)

var floodNames = [NumFloodClasses]string{"other", "rapid_reset", "made_you_reset", "continuation", "headers",
	"ping", "settings", "empty_data", "window_update", "glitch_window", "control_backlog", "priority"}

// String is the class's stable metric name.
func (f FloodClass) String() string {
	if f < NumFloodClasses {
		return floodNames[f]
	}
	return floodNames[FloodOther]
}

// ViolationKind is the finer name upstream's flood detector gives the
// threshold a connection broke: its h2.flood.violation.<kind> counters
// (upstream doc/architecture.md, H2FloodViolation), which it emits beside
// the per-class ones of its metric names (ours, FloodClass). KindNone: a
// reason upstream has no kind for (PRIORITY, SETTINGS entries, header
// field count, control backlog); upstream's glitch_window is the
// FloodGlitches class itself, counted once under that name.
type ViolationKind uint8

const (
	KindNone ViolationKind = iota
	KindRstStreamWindow
	KindRstStreamLifetime
	KindRstStreamPreResponseLifetime
	KindRstStreamEmittedLifetime
	KindPingWindow
	KindPingLifetime
	KindSettingsWindow
	KindSettingsLifetime
	KindEmptyDataWindow
	KindContinuationPerBlock
	KindWindowUpdateStream0Window
	KindHeaderSizePerBlock
	NumViolationKinds
)

var kindNames = [NumViolationKinds]string{"", "rst_stream_window", "rst_stream_lifetime",
	"rst_stream_pre_response_lifetime", "rst_stream_emitted_lifetime", "ping_window", "ping_lifetime",
	"settings_window", "settings_lifetime", "empty_data_window", "continuation_per_block",
	"window_update_stream0_window", "header_size_per_block"}

// String is the kind's stable metric name ("" for KindNone).
func (k ViolationKind) String() string {
	if k < NumViolationKinds {
		return kindNames[k]
	}
	return ""
}

// calmReason is what a calm GOAWAY's reason counts under: its class, and
// upstream's kind (KindNone: none).
type calmReason struct {
	class FloodClass
	kind  ViolationKind
}

// calmReasons classifies the reasons of calm GOAWAYs (the reasons of
// conn.go; TestFloodReasonsClassified keeps this table complete).
var calmReasons = map[string]calmReason{
	"RST_STREAM flood":                             {FloodRapidReset, KindRstStreamWindow},
	"RST_STREAM lifetime cap":                      {FloodRapidReset, KindRstStreamLifetime},
	"too many streams cancelled before a response": {FloodRapidReset, KindRstStreamPreResponseLifetime},
	"too many RST_STREAM frames provoked":          {FloodMadeYouReset, KindRstStreamEmittedLifetime},
	"CONTINUATION flood":                           {FloodContinuation, KindContinuationPerBlock},
	"header block too large":                       {FloodHeaders, KindHeaderSizePerBlock},
	"too many header fields":                       {FloodHeaders, KindNone},
	"header list too large (HPACK bomb)":           {FloodHeaders, KindHeaderSizePerBlock},
	"PING flood":                                   {FloodPing, KindPingWindow},
	"PING lifetime cap":                            {FloodPing, KindPingLifetime},
	"SETTINGS flood":                               {FloodSettings, KindSettingsWindow},
	"SETTINGS lifetime cap":                        {FloodSettings, KindSettingsLifetime},
	"too many SETTINGS entries":                    {FloodSettings, KindNone},
	"empty DATA flood":                             {FloodEmptyData, KindEmptyDataWindow},
	"WINDOW_UPDATE flood":                          {FloodWindowUpdate, KindWindowUpdateStream0Window},
	"PRIORITY flood":                               {FloodPriority, KindNone},
	"extension frame flood":                        {FloodPriority, KindNone},
	"too many protocol glitches":                   {FloodGlitches, KindNone},
	"peer is not reading control frames":           {FloodControlBacklog, KindNone},
}

// flood counts a calm GOAWAY sent for reason, by class and upstream kind
// (a reason absent from calmReasons: FloodOther, no kind).
func (s *Stats) flood(reason string) {
	if s != nil {
		r := calmReasons[reason]
		s.Floods[r.class].Add(1)
		if r.kind != KindNone {
			s.Kinds[r.kind].Add(1)
		}
	}
}

// active adds d to ActiveStreams.
func (s *Stats) active(d int64) {
	if s != nil {
		s.ActiveStreams.Add(d)
	}
}
