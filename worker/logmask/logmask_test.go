package logmask

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestAppendTarget(t *testing.T) {
	tests := []struct {
		name, target string
		mode         QueryMode
		want         string
	}{
		{"path only", "/a/b", QueryMask, "/a/b"},
		{"values masked", "/pay?card=4111111111111111&x=1", QueryMask, "/pay?card=***&x=***"},
		{"name without value", "/p?flag&y=2", QueryMask, "/p?flag&y=***"},
		{"empty query", "/p?", QueryMask, "/p?"},
		{"trailing ampersand", "/p?a=1&", QueryMask, "/p?a=***&"},
		{"double ampersand", "/p?a=1&&b=2", QueryMask, "/p?a=***&&b=***"},
		{"empty value", "/p?a=", QueryMask, "/p?a=***"},
		{"keep masks PAN", "/pay?card=4111111111111111&x=1", QueryKeep, "/pay?card=411111******1111&x=1"},
		{"keep short number", "/p?n=12345", QueryKeep, "/p?n=12345"},
		{"drop", "/pay?card=4111111111111111", QueryDrop, "/pay"},
		{"PAN in path", "/cards/4111111111111111/edit", QueryDrop, "/cards/411111******1111/edit"},
		{"PAN in name", "/p?4111111111111111=1", QueryMask, "/p?411111******1111=***"},
		// A PAN split between a name and its value is one number to the
		// backend: the name shows no more of it than a masked PAN would.
		{"PAN split between name and value", "/p?411111111111111=1", QueryMask, "/p?411111******111=***"},
		{"keep: PAN split between name and value", "/p?41111111=11111111", QueryKeep, "/p?411111**=****1111"},
		{"split with separators", "/p?a=1&4111 1111 1111=1111&b", QueryMask, "/p?a=***&4111 11** ****=***&b"},
		{"name and value, no PAN", "/p?12345678=12345679", QueryKeep, "/p?12345678=12345679"},
		{"PAN in value, digits in name", "/p?12=4111111111111111", QueryKeep, "/p?12=411111******1111"},
		{"asterisk form", "*", QueryMask, "*"},
		// Credentials in an absolute-form target (a request refused as
		// malformed shows what it sent) are never shown.
		{"userinfo", "http://bob:pw@b.test/y?q=1", QueryKeep, "http://***@b.test/y?q=1"},
		{"userinfo, no path", "https://bob:pw@b.test", QueryMask, "https://***@b.test"},
		{"userinfo with @", "http://a@b:p@w@h.test:8080/", QueryKeep, "http://***@h.test:8080/"},
		{"network-path userinfo", "//bob:pw@b.test/y", QueryKeep, "//***@b.test/y"},
		{"@ in path, not userinfo", "/u/bob:pw@x/y", QueryKeep, "/u/bob:pw@x/y"},
		{"@ after the authority", "http://b.test/u@v", QueryKeep, "http://b.test/u@v"},
		{"PAN in userinfo and path", "http://4111111111111111@h/4111111111111111", QueryKeep, "http://***@h/411111******1111"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendTarget(nil, []byte(tt.target), tt.mode))
			if got != tt.want {
				t.Errorf("AppendTarget(%q, %v) = %q, want %q", tt.target, tt.mode, got, tt.want)
			}
		})
	}
}

// TestAppendHostMasked: the userinfo of an authority (credentials, in
// a Host or :authority a request refused as malformed shows) is never
// shown; PANs are masked as everywhere.
func TestAppendHostMasked(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a.test", "a.test"},
		{"alice:s3cret@a.test", "***@a.test"},
		{"a@b:c@a.test:443", "***@a.test:443"},
		{"@a.test", "***@a.test"},
		{"4111111111111111.example.com", "411111******1111.example.com"},
	} {
		if got := string(AppendHostMasked(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("AppendHostMasked(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendPANMasked(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"visa 16", "4111111111111111", "411111******1111"},
		// Unicode decimal digits are digits (a backend normalizing its
		// input reads them as ASCII ones); a masked one is '*' for each of
		// its bytes, so the text stays UTF-8.
		{"fullwidth digits", "/c/４１１１１１１１１１１１１１１１", "/c/４１１１１１******************１１１１"},
		{"Arabic-Indic digits", "٤١١١١١١١١١١١١١١١", "٤١١١١١************١١١١"},
		{"mixed scripts, spaced", "4111 １１１１ 1111 ١١١١", "4111 １１****** **** ١١١١"},
		{"fullwidth, not luhn", "４１１１１１１１１１１１１１１２", "４１１１１１１１１１１１１１１２"},
		{"amex 15", "378282246310005", "378282*****0005"},
		{"13 digits", "4222222222222", "422222***2222"},
		{"19 digits not luhn", "6011000990139424001", "6011000990139424001"},
		{"16 digits not luhn, a 13-digit window is", "4111111111111112", "4111111111111112"},
		{"19 digits luhn", "4000000000000000006", "400000*********0006"},
		{"12 digits", "411111111111", "411111111111"},
		{"dashes", "4111-1111-1111-1111", "4111-11**-****-1111"},
		{"spaces", "4111 1111 1111 1111", "4111 11** **** 1111"},
		{"plus", "4111+1111+1111+1111", "4111+11**+****+1111"},
		{"embedded in longer run", "994111111111111111199", "994111***********1199"},
		{"letters around", "x4111111111111111y", "x411111******1111y"},
		{"two PANs", "4111111111111111?5555555555554444", "411111******1111?555555******4444"},
		// Joined by a separator, two PANs are one run, masked whole.
		{"two PANs one run", "4111111111111111/5555555555554444", "411111**********/************4444"},
		{"tabs", "4111\t1111\t1111\t1111", "4111\t11**\t****\t1111"},
		{"en dashes and figure spaces", "4111\u20131111\u20071111\u202f1111", "4111\u201311**\u2007****\u202f1111"},
		{"escaped en dashes", "4111%E2%80%931111%e2%80%931111%E2%80%931111", "4111%E2%80%9311**%e2%80%93****%E2%80%931111"},
		{"an en dash's bytes apart", "4111%E2\x80\x931111%E2\x80\x931111%E2\x80\x931111", "4111%E2\x80\x931111%E2\x80\x931111%E2\x80\x931111"},
		{"no-break spaces", "4111\u00a01111\u00a01111\u00a01111", "4111\u00a011**\u00a0****\u00a01111"},
		{"dots", "4111.1111.1111.1111", "4111.11**.****.1111"},
		{"slashes", "/p/4111/1111/1111/1111", "/p/4111/11**/****/1111"},
		{"underscores", "4111_1111_1111_1111", "4111_11**_****_1111"},
		{"double separator", "4111--111111111111", "4111--11******1111"},
		{"three separators", "4111 - 1111 - 1111 - 1111", "4111 - 11** - **** - 1111"},
		{"four separators break the run", "4111    111111111111", "4111    111111111111"},
		{"other separators break the run", "4111:1111:1111:1111 4111,1111,1111,1111", "4111:1111:1111:1111 4111,1111,1111,1111"},
		{"percent-encoded spaces", "4111%201111%201111%201111", "4111%2011**%20****%201111"},
		{"percent-encoded dashes", "4111%2D1111%2d1111%2D1111", "4111%2D11**%2d****%2D1111"},
		{"percent-encoded plus", "4111%2B1111%2B1111%2B1111", "4111%2B11**%2B****%2B1111"},
		{"percent-encoded space then plain digits", "/c/4111%20111111111111", "/c/4111%2011******1111"},
		{"percent-encoded slashes", "4111%2F1111%2f1111%2F1111", "4111%2F11**%2f****%2F1111"},
		{"percent-encoded tab, dot, underscore", "4111%091111%2E1111%5f1111", "4111%0911**%2E****%5f1111"},
		{"percent-encoded no-break spaces", "4111%C2%A01111%c2%a01111%C2%A01111", "4111%C2%A011**%c2%a0****%C2%A01111"},
		{"double percent-encoded spaces", "4111%20%201111%20%201111%20%201111", "4111%20%2011**%20%20****%20%201111"},
		{"other escape breaks the run", "4111%3A1111%3A1111%3A1111", "4111%3A1111%3A1111%3A1111"},
		{"escape at the end", "4111111111111111%20", "411111******1111%20"},
		{"digit escape before the PAN", "/s/%224111111111111111%22", "/s/%22411111******1111%22"},
		{"other escapes before the PAN", "%234111111111111111 x %254111111111111111 x %2F4111111111111111 x %3a4111111111111111",
			"%23411111******1111 x %25411111******1111 x %2F411111******1111 x %3a411111******1111"},
		// An escaped digit is a digit: "%30" then a PAN is a 17-digit
		// run, Luhn-valid as the PAN is; "%39" then a PAN one that is
		// not, the PAN glued to another digit (as "9411…" unescaped).
		{"escaped 0 before the PAN", "%304111111111111111", "%3041111*******1111"},
		{"escaped 9 before the PAN", "%394111111111111111", "%394111111111111111"},
		{"PAN starting in an escape", "%4111111111111111", "%411111******1111"},
		{"PAN starting at an escape's second digit", "%A4111111111111111", "%A411111******1111"},
		{"lone percent before the PAN", "%x4111111111111111", "%x411111******1111"},
		{"neither text holds a PAN", "%24111111111111111", "%24111111111111111"},
		{"escaped first digit", "/s/%34111111111111111", "/s/%3411111******1111"},
		{"escaped digits throughout", "%34%31%31%31%31%31%31%31%31%31%31%31%31%31%31%31", "%34%31%31%31%31%31%3*%3*%3*%3*%3*%3*%31%31%31%31"},
		{"escaped digits and separators", "4111%201111%2011%311%201111", "4111%2011**%20**%3**%201111"},
		{"PAN then its month", "4111 1111 1111 1111 12", "4111 11** **** **11 12"},
		{"PAN then its month, form-encoded", "4111111111111111+12", "411111********11+12"},
		{"a group then the PAN", "12-4111-1111-1111-1111", "12-4111-****-****-1111"},
		{"PAN then its month, escaped", "4111%201111%201111%201111%2012", "4111%2011**%20****%20**11%2012"},
		{"PAN whole, digits after it glued", "411111111111111112", "411111111111111112"},
		{"timestamp", "1733470000000", "1733470000000"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendPANMasked(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("AppendPANMasked(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseQueryMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want QueryMode
		err  string
	}{
		{"mask", QueryMask, ""},
		{"keep", QueryKeep, ""},
		{"drop", QueryDrop, ""},
		{"Mask", 0, `invalid access log query mode "Mask": want mask, keep, drop`},
	} {
		got, err := ParseQueryMode(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseQueryMode(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQueryMode(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestSensitive(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"Authorization", true}, {"cookie", true}, {"SET-COOKIE", true}, {"Proxy-Authorization", true},
		{"User-Agent", false}, {"Cookies", false}, {"", false},
	} {
		if got := Sensitive([]byte(tt.name)); got != tt.want {
			t.Errorf("Sensitive(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAppendTargetDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 256)
	target := []byte("/pay/4111111111111111?card=4111111111111111&x=1")
	if n := testing.AllocsPerRun(100, func() { dst = AppendTarget(dst[:0], target, QueryMask) }); n != 0 {
		t.Errorf("AppendTarget allocates %v times", n)
	}
}

// FuzzAppendTarget checks the invariants of masking on any target: no PAN
// survives (leaksPAN), the output is no longer than the
// input plus the masked values, and under QueryKeep only digits change.
func FuzzAppendTarget(f *testing.F) {
	for _, s := range []string{"/pay?card=4111111111111111", "/4111-1111-1111-1111", "/4111%201111%2D1111%2b1111", "%204222222222222", "/p?a=1&&b", "?", "", "4000000000000000006",
		"/s/%224111111111111111%22", "%A4111111111111111", "0%20000000002010", "%34111111111111111",
		"/p/4111.1111/1111_1111", "4111\t1111\u00a01111 - 1111", "4111%C2%A01111%091111%5F1111", "4111%C2\xa01111111111111",
		"4111\u20131111%E2%80%931111\u202f1111"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, target []byte, m uint8) {
		mode := QueryMode(m % 3)
		out := AppendTarget(nil, target, mode)
		if leaksPAN(out) {
			t.Fatalf("AppendTarget(%q, %v) = %q leaks a PAN", target, mode, out)
		}
		if mode == QueryKeep {
			// Kept as sent but for masked digits, and the userinfo of an
			// absolute-form or network-path target, which is Masked.
			want := target
			path, _, _ := cut(target, '?')
			if a, at := userinfo(path); at > a {
				want = append(append(append([]byte(nil), target[:a]...), Masked...), target[at:]...)
			}
			if len(out) != len(want) {
				t.Fatalf("keep changed the length: %q → %q", target, out)
			}
			// A digit's bytes may be masked: an ASCII one, or every byte
			// of another Unicode decimal digit (digitLen).
			digit := make([]bool, len(want))
			for i := 0; i < len(want); i++ {
				for k := range digitLen(want[i:]) {
					digit[i+k] = true
				}
			}
			for i := range out {
				if out[i] != want[i] && !(out[i] == MaskDigit && digit[i]) {
					t.Fatalf("keep changed a non-digit at %d: %q → %q", i, target, out)
				}
			}
		}
		if mode == QueryDrop && bytes.IndexByte(out, '?') >= 0 {
			t.Fatalf("drop left a query: %q → %q", target, out)
		}
	})
}

// leaksPAN reports whether b holds a PAN in either of its texts: as it is
// (what a reader of the log sees) or with its percent-escapes decoded
// (digits and separators as what they encode, others as a letter). A PAN
// is a run of 13 to 19 digits that passes the Luhn check, or a longer run
// with such a window; between two digits of a run, one to three
// separators: space, tab, '-', '+', '.', '/', '_', and no-break, figure and
// narrow no-break spaces, hyphen, non-breaking hyphen, figure and en dashes.
func leaksPAN(b []byte) bool { return leaksText(b) || leaksText(decodeEscapes(b)) }

// oracleWide are the separators of more than one byte, in UTF-8.
var oracleWide = []string{"\xc2\xa0", "\xe2\x80\x87", "\xe2\x80\xaf", "\xe2\x80\x90", "\xe2\x80\x91", "\xe2\x80\x92", "\xe2\x80\x93"}

// decodeEscapes returns b with its escapes of digits and separators
// decoded (a wide separator when all its bytes are escaped), every other
// escape as 'x'.
func decodeEscapes(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '%' || i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
			out = append(out, b[i])
			continue
		}
		wide := false
		for _, w := range oracleWide {
			var esc strings.Builder
			for j := 0; j < len(w); j++ {
				fmt.Fprintf(&esc, "%%%02X", w[j])
			}
			if strings.EqualFold(string(b[i:min(i+esc.Len(), len(b))]), esc.String()) {
				out = append(out, w...)
				i += esc.Len() - 1
				wide = true
				break
			}
		}
		if wide {
			continue
		}
		v, _ := strconv.ParseUint(string(b[i+1:i+3]), 16, 8)
		if c := byte(v); isDigit(c) || strings.IndexByte(" \t-+./_", c) >= 0 {
			out = append(out, c)
		} else {
			out = append(out, 'x')
		}
		i += 2
	}
	return out
}

func leaksText(b []byte) bool {
	sep := func(i int) int { // the separator's length at b[i], 0 for none
		switch {
		case i >= len(b):
			return 0
		case strings.IndexByte(" \t-+./_", b[i]) >= 0:
			return 1
		}
		for _, w := range oracleWide {
			if strings.HasPrefix(string(b[i:]), w) {
				return len(w)
			}
		}
		return 0
	}
	var d []byte
	flush := func() bool {
		defer func() { d = d[:0] }()
		if len(d) >= minPAN && len(d) <= maxPAN {
			return luhn(d)
		}
		if len(d) <= maxPAN {
			return false
		}
		for l := minPAN; l <= maxPAN; l++ {
			for s := 0; s+l <= len(d); s++ {
				if luhn(d[s : s+l]) {
					return true
				}
			}
		}
		return false
	}
	for i := 0; i < len(b); {
		if isDigit(b[i]) {
			d = append(d, b[i]-'0')
			i++
			// A gap of one to three separators before a digit joins.
			j, n := i, 0
			for k := sep(j); k > 0 && n < 3; k = sep(j) {
				j += k
				n++
			}
			if n > 0 && j < len(b) && isDigit(b[j]) {
				i = j
			}
			continue
		}
		if flush() {
			return true
		}
		i++
	}
	return flush()
}

// FuzzMayHoldPAN: when MayHoldPAN says no, AppendPANMasked changes
// nothing (the pre-filter is sound).
func FuzzMayHoldPAN(f *testing.F) {
	for _, s := range []string{"4111111111111111", "4111 1111-1111+1111", "4111%201111%2D1111%2b1111", "%204222222222222",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "1234567890123", "12345 67890 123",
		"4111.1111/1111_1111", "4111%C2%A01111%091111%5f1111", "４１１１ １１１１ ١١١١ 1111"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		masked := bytes.Clone(b)
		maskPANs(b, masked, false) // the scan, without the pre-filter
		if !MayHoldPAN(b) && !bytes.Equal(masked, b) {
			t.Fatalf("MayHoldPAN(%q) is false but the scan masks it: %q", b, masked)
		}
		split := bytes.Clone(b)
		maskPANs(b, split, true) // the query's split scan, likewise
		if !mayHoldPAN(b, &mayJoinQuery) && !bytes.Equal(split, b) {
			t.Fatalf("mayHoldPAN(%q, query) is false but the split scan masks it: %q", b, split)
		}
	})
}

// TestPANAfterUnicodeDigit: a PAN that a Unicode digit precedes or follows
// ("߆4111111111111111") is a PAN to a reader who does not take that digit
// for one (a PAN discovery tool): it is masked, though the run as a whole
// fails the Luhn check (found by FuzzAppendTarget).
func TestPANAfterUnicodeDigit(t *testing.T) {
	for _, in := range []string{"߆4111111111111111", "4111111111111111߆", "/p/４4111111111111111", "߆0000000000000"} {
		if out := AppendPANMasked(nil, []byte(in)); leaksPAN(out) {
			t.Errorf("%q: %q leaks a PAN", in, out)
		}
	}
}
