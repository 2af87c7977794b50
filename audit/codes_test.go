package audit

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// TestCodesHaveNamesAndBack is style habit 6: every code has a dotted
// name, every name leads back to its code, and both are well formed.
func TestCodesHaveNamesAndBack(t *testing.T) {
	codePat := regexp.MustCompile(`^SZ[0-9]{4}$`)
	if len(codesByName) != len(codeNames) {
		t.Fatalf("%d codes but %d names", len(codeNames), len(codesByName))
	}
	for _, c := range Codes() {
		name := c.Name()
		if !codePat.MatchString(string(c)) {
			t.Errorf("code %q is not SZ and four digits", c)
		}
		if name == "" || !verbPattern.MatchString(name) || !strings.Contains(name, ".") {
			t.Errorf("code %s has name %q, want a dotted name", c, name)
		}
		if back, ok := CodeFor(name); !ok || back != c {
			t.Errorf("name %q leads back to %q, want %s", name, back, c)
		}
	}
	if Code("SZ0000").Known() || Code("SZ0000").Name() != "" {
		t.Error("an unknown code has a name")
	}
	if _, ok := CodeFor("no.such.event"); ok {
		t.Error("an unknown name has a code")
	}
}

// TestSchemaEnumsAreTheCodeTable keeps the schema's code and event enums
// equal to the table, so a new code cannot ship without its schema.
func TestSchemaEnumsAreTheCodeTable(t *testing.T) {
	var s struct {
		Properties map[string]struct{ Enum []string }
	}
	if err := json.Unmarshal(schemaJSON, &s); err != nil {
		t.Fatal(err)
	}
	var codes, names []string
	for _, c := range Codes() {
		codes = append(codes, string(c))
		names = append(names, c.Name())
	}
	if got := s.Properties["code"].Enum; !slices.Equal(got, codes) {
		t.Errorf("schema code enum %v\nwant %v", got, codes)
	}
	if got := s.Properties["event"].Enum; !slices.Equal(got, names) {
		t.Errorf("schema event enum %v\nwant %v", got, names)
	}
}

// TestEveryRequestVerbHasADottedVerb walks command.Request's oneof: every
// field has a verb, no entry names a missing field, verbs are unique.
func TestEveryRequestVerbHasADottedVerb(t *testing.T) {
	fields := (&command.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("request_type").Fields()
	seen := map[string]string{}
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		v, ok := requestVerbs[name]
		if !ok {
			t.Errorf("oneof field %s has no verb in requestVerbs", name)
			continue
		}
		if !verbPattern.MatchString(v.verb) || !strings.Contains(v.verb, ".") {
			t.Errorf("%s: verb %q is not dotted", name, v.verb)
		}
		if v.class == ClassUnknown || v.class == ClassInternal {
			t.Errorf("%s: class %v", name, v.class)
		}
		if other, dup := seen[v.verb]; dup {
			t.Errorf("verb %q names both %s and %s", v.verb, other, name)
		}
		seen[v.verb] = name
	}
	if len(requestVerbs) != fields.Len() {
		t.Errorf("requestVerbs has %d entries for %d oneof fields", len(requestVerbs), fields.Len())
	}
	if got := VerbOf(&command.Request{RequestType: &command.Request_AddHttpFrontend{}}); got != "frontend.http.add" {
		t.Errorf("VerbOf(add_http_frontend) = %q", got)
	}
	if got := VerbOf(nil); got != VerbRequestEmpty {
		t.Errorf("VerbOf(nil) = %q", got)
	}
}

// TestLifecycleCodesHaveVerbs: each process and audit event code has a
// verb of the same name, so internal records read verb == event.
func TestLifecycleCodesHaveVerbs(t *testing.T) {
	for _, c := range Codes() {
		name := c.Name()
		if strings.HasPrefix(name, "command.") || strings.HasPrefix(name, "query.") {
			continue
		}
		if ClassOf(name) == ClassUnknown {
			t.Errorf("code %s (%s) has no verb of that name", c, name)
		}
	}
	for _, v := range Verbs() {
		if !verbPattern.MatchString(v) {
			t.Errorf("verb %q", v)
		}
	}
}
