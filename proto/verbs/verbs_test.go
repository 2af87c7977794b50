package verbs

import (
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// TestCatalogueComplete: one entry per Request oneof field, in field
// order, none extra; names unique and dotted; every field of an entry set.
func TestCatalogueComplete(t *testing.T) {
	fields := Fields()
	var got []string
	for _, v := range All() {
		got = append(got, v.Field)
	}
	if !slices.Equal(got, fields) {
		for _, f := range fields {
			if Lookup(f) == nil {
				t.Errorf("Request field %q has no catalogue entry", f)
			}
		}
		for _, f := range got {
			if !slices.Contains(fields, f) {
				t.Errorf("catalogue entry %q names no Request field", f)
			}
		}
		if !t.Failed() {
			t.Errorf("catalogue order differs from the oneof's:\n got  %v\n want %v", got, fields)
		}
	}
	names := map[string]string{}
	for _, v := range All() {
		if prev, dup := names[v.Name]; dup {
			t.Errorf("%s and %s share the name %q", prev, v.Field, v.Name)
		}
		names[v.Name] = v.Field
		if !strings.Contains(v.Name, ".") || strings.ToLower(v.Name) != v.Name {
			t.Errorf("%s: name %q is not a lowercase dotted name", v.Field, v.Name)
		}
		if v.Role == 0 || v.Class == 0 || v.Audit == 0 {
			t.Errorf("%s: role %v, class %v, audit %v: all must be set", v.Field, v.Role, v.Class, v.Audit)
		}
		// The rules that tie the columns together.
		if v.Role == ReadOnly && v.Class != Query && v.Class != Stream {
			t.Errorf("%s: a %v verb open to the read-only role", v.Field, v.Class)
		}
		if (v.Class == Query || v.Class == Stream) != (v.Audit == AuditQuery) {
			t.Errorf("%s: class %v audited as %v", v.Field, v.Class, v.Audit)
		}
	}
}

func TestLookup(t *testing.T) {
	req := &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: new(string)}}}
	if v := Of(req); v == nil || v.Name != "cluster.add" || v.Role != Admin || !v.FanOut {
		t.Fatalf("Of(add_cluster) = %+v", v)
	}
	if Of(&command.Request{}) != nil {
		t.Error("a request without verb has an entry")
	}
	if RequiredRole("") != Admin || RequiredRole("no_such_verb") != Admin || RequiredRole("status") != ReadOnly {
		t.Error("RequiredRole: unknown verbs must need Admin")
	}
}
