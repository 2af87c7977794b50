package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBuildReload: -f sends the path made absolute against the operator's
// directory (the supervisor's is another); no -f sends "", the
// supervisor's own configuration.
func TestBuildReload(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reload"}, ""},
		{[]string{"reload", "-f", "new.toml"}, filepath.Join(wd, "new.toml")},
		{[]string{"reload", "--file", "/etc/sozu/../sozu/config.toml"}, "/etc/sozu/config.toml"},
	} {
		inv, err := parseArgs(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		req, err := inv.verb.build(&inv.values)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := req.GetReloadConfiguration(); got != tc.want || req.GetRequestType() == nil {
			t.Errorf("%v: path %q, want %q", tc.args, got, tc.want)
		}
	}
}
