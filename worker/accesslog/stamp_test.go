package accesslog

import (
	"testing"
	"time"
)

// TestStampsMatchAppendFormat: the cached formatting writes what
// AppendFormat writes, across seconds, zones and fractions.
func TestStampsMatchAppendFormat(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	base := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	for _, ns := range []int{0, 1, 10, 999, 1000, 123456789, 100000000, 999999999, 500000} {
		for _, d := range []time.Duration{0, time.Second, 2 * time.Second, 24 * time.Hour} {
			for _, tt := range []time.Time{base.Add(d).Add(time.Duration(ns)), base.Add(d).Add(time.Duration(ns)).In(paris)} {
				if got, want := string(appendRFC3339Nano(nil, tt)), tt.UTC().Format(time.RFC3339Nano); got != want {
					t.Errorf("RFC3339Nano of %v: %s, want %s", tt, got, want)
				}
				if got, want := string(appendMicros(nil, tt)), tt.UTC().Format("2006-01-02T15:04:05.000000Z"); got != want {
					t.Errorf("micros of %v: %s, want %s", tt, got, want)
				}
			}
		}
	}
}
