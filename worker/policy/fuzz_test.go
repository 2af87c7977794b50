package policy

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzBasicCredentials checks that decoding an Authorization value never
// panics, and that what it decodes is what the client encoded: the value
// built again from the user and password decodes to the same pair.
func FuzzBasicCredentials(f *testing.F) {
	for _, s := range []string{"Basic Ym9iOnB3", "basic   Ym9iOg==", "Basic Ym9i", "Basic !!", "Bearer x", "Basic", "Basic YTpiOmM="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var buf credBuf
		user, pass, err := basicCredentials(&buf, v)
		if err != nil {
			return
		}
		if bytes.IndexByte(user, ':') >= 0 || len(user)+1+len(pass) > MaxCredential {
			t.Fatalf("%q: user %q, password %q", v, user, pass)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString(append(append(append([]byte(nil), user...), ':'), pass...))
		var buf2 credBuf
		u2, p2, err := basicCredentials(&buf2, []byte(again))
		if err != nil || !bytes.Equal(u2, user) || !bytes.Equal(p2, pass) {
			t.Fatalf("%q decodes to %q %q; encoded again, to %q %q (%v)", v, user, pass, u2, p2, err)
		}
	})
}
