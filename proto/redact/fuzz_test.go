package redact

import (
	"strings"
	"testing"
)

// FuzzScrubPEM: the result holds no private key marker, is never longer
// than the input, is unchanged by a second pass, and text without a
// marker is returned as is.
func FuzzScrubPEM(f *testing.F) {
	for _, s := range []string{
		"", pemKey, "cert\n" + pemKey + "tail", "-----BEGIN PRI" + pemKey + "VATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----\nx", "-----begin ec private key-----\n-----END X-----",
		"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := ScrubPEM(in)
		if HasPrivateKey(out) {
			t.Fatalf("ScrubPEM(%q) = %q still holds a private key", in, out)
		}
		if len(out) > len(in) {
			t.Fatalf("ScrubPEM grew %q to %q", in, out)
		}
		if again := ScrubPEM(out); again != out {
			t.Fatalf("not idempotent: %q then %q", out, again)
		}
		if !HasPrivateKey(in) && out != in {
			t.Fatalf("changed %q without a key into %q", in, out)
		}
		if !strings.Contains(strings.ToUpper(in), "PRIVATE KEY") && out != in {
			t.Fatalf("changed %q", in)
		}
	})
}
