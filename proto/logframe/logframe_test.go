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

// FuzzNext checks that Next never panics and that what it splits
// re-encodes to the bytes it consumed.
func FuzzNext(f *testing.F) {
	f.Add(Append(Append(nil, Main, []byte("x")), Access, []byte("yz")))
	f.Add([]byte{Access, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		for len(p) > 0 {
			kind, rec, rest, err := Next(p)
			if err != nil {
				return
			}
			used := p[:len(p)-len(rest)]
			if again := Append(nil, kind, rec); !bytes.Equal(again, used) && Size(len(rec)) != len(again) {
				t.Fatalf("re-encoding %q gave %q", used, again)
			}
			p = rest
		}
	})
}
