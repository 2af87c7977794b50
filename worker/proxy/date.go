package proxy

import (
	"sync/atomic"
	"time"
)

// imfFixdate is the preferred HTTP-date format (RFC 9110 §5.6.7).
const imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"

// dateValue is the Date field value of one second.
type dateValue struct {
	sec int64
	b   []byte
}

// lastDate is the value of the latest second asked for, shared by every
// session: formatted once a second, never written once published.
var lastDate atomic.Pointer[dateValue]

// httpDate returns the Date field value (IMF-fixdate) of now's second. The
// slice is immutable and shared: callers copy it, never change it.
func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateValue{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, len(imfFixdate)), imfFixdate)}
	lastDate.Store(d)
	return d.b
}

var nameDate = []byte("Date")
