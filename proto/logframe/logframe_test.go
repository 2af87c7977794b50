package logframe

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	recs := [][]byte{[]byte("a line\n"), {}, bytes.Repeat([]byte{0}, 300)}
	var p []byte
	for i, r := range recs {
		p = Append(p, Main+byte(i%2), r)
		if got, want := len(p), 0; got == want {
			t.Fatal("nothing appended")
		}
	}
	for i, want := range recs {
		kind, rec, rest, err := Next(p)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if kind != Main+byte(i%2) || !bytes.Equal(rec, want) {
			t.Fatalf("record %d: kind %d %q", i, kind, rec)
		}
		p = rest
	}
	if len(p) != 0 {
		t.Fatalf("%d bytes left", len(p))
	}
}

func TestNextErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    []byte
		want string
	}{
		{"empty", nil, ErrShort.Error()},
		{"unknown kind", []byte{9, 0}, "logframe: unknown record kind 9"},
		{"length past end", []byte{Main, 5, 'a'}, ErrShort.Error()},
		{"bad varint", []byte{Access, 0x80}, ErrShort.Error()},
	} {
		if _, _, _, err := Next(tt.p); err == nil || err.Error() != tt.want {
			t.Errorf("%s: Next = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// FuzzNext checks that Next never panics, that what it splits off is a
// prefix at least as long as the canonical encoding of the record, and that
// the canonical encoding splits back to the same record.
func FuzzNext(f *testing.F) {
	f.Add(Append(Append(nil, Main, []byte("x")), Access, []byte("yz")))
	f.Add([]byte{Access, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{Main, 0x81, 0x00, 'a'}) // a non-canonical length
	f.Fuzz(func(t *testing.T, p []byte) {
		for len(p) > 0 {
			kind, rec, rest, err := Next(p)
			if err != nil {
				return
			}
			used := len(p) - len(rest)
			if used < Size(len(rec)) || !bytes.HasSuffix(p[:used], rec) {
				t.Fatalf("Next(%q) used %d bytes for a record of %d", p, used, len(rec))
			}
			k2, rec2, rest2, err := Next(Append(nil, kind, rec))
			if err != nil || k2 != kind || !bytes.Equal(rec2, rec) || len(rest2) != 0 {
				t.Fatalf("re-encoding %q: %d %q %q %v", rec, k2, rec2, rest2, err)
			}
			p = rest
		}
	})
}

// TestReserveSeal: records written in place read back like Append's, at
// every length a padded length must carry (one, two and three 7-bit
// groups, and MaxRecord).
func TestReserveSeal(t *testing.T) {
	sizes := []int{0, 1, 127, 128, 16383, 16384, MaxRecord}
	var p []byte
	for i, n := range sizes {
		var start int
		p, start = Reserve(p, Main+byte(i%2))
		p = append(p, bytes.Repeat([]byte{byte(i)}, n)...)
		if got, err := Seal(p, start); err != nil || got != n {
			t.Fatalf("Seal of %d bytes: %d, %v", n, got, err)
		}
	}
	for i, n := range sizes {
		kind, rec, rest, err := Next(p)
		if err != nil || kind != Main+byte(i%2) || !bytes.Equal(rec, bytes.Repeat([]byte{byte(i)}, n)) {
			t.Fatalf("record %d (%d bytes): kind %d, %d bytes, %v", i, n, kind, len(rec), err)
		}
		p = rest
	}
	p, start := Reserve(nil, Access)
	p = append(p, make([]byte, MaxRecord+1)...)
	if _, err := Seal(p, start); err == nil {
		t.Error("a record over MaxRecord was sealed")
	}
}
