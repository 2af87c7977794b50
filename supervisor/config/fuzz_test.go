package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzParse checks that no input makes Parse panic, that a refused input
// gets a well-formed Errors, and that parsing is deterministic: the same
// problems in the same order, or the same requests. The position scanner also runs on every input,
// valid TOML or not, and must terminate.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	examples, _ := filepath.Glob("../../docs/examples/*.toml")
	for _, file := range append(files, examples...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\n[clusters.a]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:80\", hostname = \"a\" }]\n"))
	f.Add([]byte("a.b.\"c.d\" = { e = [1, { f = '''x'''}] }\n[[x.y]]\n[x.y.z]\nw = 1979-05-27 07:32:00Z\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		scanPositions(string(data))
		c, err := Parse(data, "fuzz.toml")
		c2, err2 := Parse(data, "fuzz.toml") // building must not depend on map order
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("two parses disagree: %v / %v", err, err2)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" || ce.File != "fuzz.toml" {
					t.Fatalf("malformed problem %#v", e)
				}
			}
			return
		}
		a, b := c.Requests(), c2.Requests()
		if len(a) != len(b) {
			t.Fatalf("two parses gave %d and %d requests", len(a), len(b))
		}
		for i := range a {
			if !proto.Equal(a[i], b[i]) {
				t.Fatalf("request %d differs between parses:\n%v\n%v", i, a[i], b[i])
			}
			if err := proto.CheckInitialized(a[i]); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if err := proto.CheckInitialized(c.ServerConfig()); err != nil {
			t.Fatalf("ServerConfig: %v", err)
		}
	})
}
