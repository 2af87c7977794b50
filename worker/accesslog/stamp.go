package accesslog

import (
	"sync/atomic"
	"time"
)

// Timestamps are most of a record's formatting cost when written with
// time.Time.AppendFormat; records of one second share its date and time
// of day, so that part is formatted once per second (stampCache) and only
// the fraction per record.

// stampCache is the text of one UTC second, "2006-01-02T15:04:05".
type stampCache struct {
	sec  int64
	text [19]byte
}

var lastStamp atomic.Pointer[stampCache]

// appendSecond appends t's UTC date and time of day to the second.
func appendSecond(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	c := lastStamp.Load()
	if c == nil || c.sec != sec {
		c = &stampCache{sec: sec}
		t.UTC().AppendFormat(c.text[:0], "2006-01-02T15:04:05")
		lastStamp.Store(c)
	}
	return append(dst, c.text[:]...)
}

// appendRFC3339Nano appends t in UTC as time.RFC3339Nano writes it:
// trailing zeros of the fraction dropped, no fraction for a whole second.
func appendRFC3339Nano(dst []byte, t time.Time) []byte {
	dst = appendSecond(dst, t)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

// appendMicros appends t in UTC as "2006-01-02T15:04:05.000000Z".
func appendMicros(dst []byte, t time.Time) []byte {
	dst = appendSecond(dst, t)
	var frac [8]byte
	frac[0], frac[7] = '.', 'Z'
	us := t.Nanosecond() / 1000
	for i := 6; i > 0; i-- {
		frac[i] = byte('0' + us%10)
		us /= 10
	}
	return append(dst, frac[:]...)
}
