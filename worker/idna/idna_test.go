package idna

import (
	"strings"
	"testing"
)

func TestToASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"*.example.com", "*.example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"*.münchen.de", "*.xn--mnchen-3ya.de"},
		{"ü", "xn--tda"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		// RFC 3492 §7.1 samples (A) Arabic, (L) mixed case kept as given.
		{"\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064A\u061F", "xn--egbpdaj6bu4bxfgehfvwxn"},
		{"3年B組金八先生", "xn--3B-ww4c5e180e575a65lsy2b"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
	}
	for _, tc := range tests {
		got, err := ToASCII(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ToASCII(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ToASCII("a.\xff.example"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

// FuzzToASCII checks that a converted name is ASCII, keeps its labels,
// leaves ASCII names alone and is a fixed point.
func FuzzToASCII(f *testing.F) {
	for _, s := range []string{"bücher.example", "*.münchen.de", "例え.テスト", "a..b", "", "xn--tda"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := ToASCII(name)
		if err != nil {
			return
		}
		if !IsASCII(out) {
			t.Fatalf("ToASCII(%q) = %q is not ASCII", name, out)
		}
		if IsASCII(name) && out != name {
			t.Fatalf("ASCII %q changed to %q", name, out)
		}
		if strings.Count(out, ".") != strings.Count(name, ".") {
			t.Fatalf("ToASCII(%q) = %q changed the labels", name, out)
		}
		if again, err := ToASCII(out); err != nil || again != out {
			t.Fatalf("not a fixed point: %q -> %q, %v", out, again, err)
		}
	})
}
