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

// floodOf classifies the reason of a calm GOAWAY (the reasons of conn.go;
// TestFloodReasonsClassified keeps this table complete).
var floodOf = map[string]FloodClass{
	"RST_STREAM flood":                             FloodRapidReset,
	"RST_STREAM lifetime cap":                      FloodRapidReset,
	"too many streams cancelled before a response": FloodRapidReset,
	"too many RST_STREAM frames provoked":          FloodMadeYouReset,
	"CONTINUATION flood":                           FloodContinuation,
	"header block too large":                       FloodHeaders,
	"too many header fields":                       FloodHeaders,
	"header list too large (HPACK bomb)":           FloodHeaders,
	"PING flood":                                   FloodPing,
	"PING lifetime cap":                            FloodPing,
	"SETTINGS flood":                               FloodSettings,
	"SETTINGS lifetime cap":                        FloodSettings,
	"too many SETTINGS entries":                    FloodSettings,
	"empty DATA flood":                             FloodEmptyData,
	"WINDOW_UPDATE flood":                          FloodWindowUpdate,
	"PRIORITY flood":                               FloodPriority,
	"extension frame flood":                        FloodPriority,
	"too many protocol glitches":                   FloodGlitches,
	"peer is not reading control frames":           FloodControlBacklog,
}

// flood counts a calm GOAWAY sent for reason.
func (s *Stats) flood(reason string) {
	if s != nil {
		s.Floods[floodOf[reason]].Add(1)
	}
}

// active adds d to ActiveStreams.
func (s *Stats) active(d int64) {
	if s != nil {
		s.ActiveStreams.Add(d)
	}
}
