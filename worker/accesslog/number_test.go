package accesslog

import (
	"math"
	"strconv"
	"testing"
)

// TestAppendIntMatchesStrconv: every power of ten and its neighbours, the
// extremes, after a prefix (the digits go at the end of dst).
func TestAppendIntMatchesStrconv(t *testing.T) {
	vals := []int64{0, 1, 9, math.MaxInt64, math.MinInt64, -1, -10}
	for p := int64(1); p <= math.MaxInt64/10; p *= 10 {
		vals = append(vals, p-1, p, p+1, 10*p-1, -p)
	}
	for _, v := range vals {
		if got, want := string(appendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendInt(%d) = %q, want %q", v, got, want)
		}
	}
	for _, u := range []uint64{math.MaxUint64, math.MaxUint64 / 10, 1e19 - 1, 1e19} {
		if got, want := string(appendUint(nil, u)), strconv.FormatUint(u, 10); got != want {
			t.Errorf("appendUint(%d) = %q, want %q", u, got, want)
		}
	}
}

func FuzzAppendInt(f *testing.F) {
	f.Add(int64(0))
	f.Add(int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, v int64) {
		if got, want := string(appendInt(nil, v)), strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendInt(%d) = %q, want %q", v, got, want)
		}
	})
}

func TestSplitAuthority(t *testing.T) {
	for _, tt := range []struct {
		in, host string
		port     int
	}{
		{"shop.example.com", "shop.example.com", -1},
		{"shop.example.com:8443", "shop.example.com", 8443},
		{"127.0.0.1:18281", "127.0.0.1", 18281},
		{"[2001:db8::1]:443", "[2001:db8::1]", 443},
		{"[2001:db8::1]", "[2001:db8::1]", -1},
		{"host:", "host:", -1},
		{"host:99999", "host:99999", -1},
		{"host:123456", "host:123456", -1},
		{":80", ":80", -1},
		{"[::1:80", "[::1:80", -1},
		{"", "", -1},
	} {
		host, port := splitAuthority([]byte(tt.in))
		if string(host) != tt.host || port != tt.port {
			t.Errorf("splitAuthority(%q) = %q, %d; want %q, %d", tt.in, host, port, tt.host, tt.port)
		}
	}
}
