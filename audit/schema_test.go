package audit

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestDocsSchemaIsTheEmbeddedOne keeps docs/audit-record.schema.json (what
// SIEM integrators read) identical to the schema ValidateJSON enforces.
func TestDocsSchemaIsTheEmbeddedOne(t *testing.T) {
	docs, err := os.ReadFile("../docs/audit-record.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, schemaJSON) {
		t.Fatal("docs/audit-record.schema.json differs from audit/record.schema.json: copy one onto the other")
	}
}

func TestCompileSchemaRefusesUnknownKeywords(t *testing.T) {
	for _, s := range []string{
		`{"type":"object","oneOf":[]}`,
		`{"additionalProperties":true}`,
		`{"format":"email"}`,
		`{"type":"strnig"}`,
		`{"properties":{"a":{"$ref":"#/x"}}}`,
	} {
		if _, err := compileSchema([]byte(s)); err == nil {
			t.Errorf("compileSchema(%s) accepted it", s)
		}
	}
}

func validLine(t *testing.T) string {
	t.Helper()
	r := stamped(sample(testIDs(), "cluster.add"))
	w := r.wire()
	c, err := marshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	line := string(appendChain(c, strings.Repeat("a", 64)))
	if err := ValidateJSON([]byte(line)); err != nil {
		t.Fatalf("valid line refused: %v\n%s", err, line)
	}
	return line
}

func TestValidateJSONRefuses(t *testing.T) {
	line := validLine(t)
	cases := []struct {
		name, old, new, want string
	}{
		{"missing key", `"socket":"/run/sozu/sozu.sock",`, ``, "/socket: required key missing"},
		{"extra key", `"socket":`, `"password":"x","socket":`, "/password: key not allowed"},
		{"duplicate key", `"socket":`, `"socket":null,"socket":`, `duplicate key "socket"`},
		{"type", `"seq":41`, `"seq":"41"`, "/seq: want integer, got string"},
		{"fraction", `"seq":41`, `"seq":41.5`, "/seq: want integer, got number"},
		{"minimum", `"seq":41`, `"seq":0`, "/seq: 0 is below the minimum 1"},
		{"nested type", `"uid":1000`, `"uid":-1`, "/actor/uid: -1 is below the minimum 0"},
		{"nested extra", `"role":"admin"`, `"role":"admin","pw":1`, "/actor/pw: key not allowed"},
		{"enum", `"result":"ok"`, `"result":"OK"`, "/result: OK is not one of"},
		{"code", `"code":"SZ1001"`, `"code":"SZ1999"`, "/code: SZ1999 is not one of"},
		{"event mismatch", `"event":"command.completed"`, `"event":"command.attempt"`, "/event: command.attempt is not the name of code SZ1001"},
		{"pattern", `"verb":"cluster.add"`, `"verb":"Cluster.Add"`, "/verb:"},
		{"date-time", `"connect_ts":"2025-03-14T15:00:00.000000Z"`, `"connect_ts":"yesterday"`, "/connect_ts:"},
		{"maxLength", `"reason":null`, `"reason":"` + strings.Repeat("é", 257) + `"`, "/reason: 257 characters, more than 256"},
		{"two lines", `"reason":null`, "\"reason\":null}\n{", "more than one line"},
		{"trailing", `aaaa"}`, `aaaa"} {}`, "data after"},
		{"chain", `"chain":"aaaa`, `"chain":"AAAA`, "/chain:"},
	}
	for _, c := range cases {
		if !strings.Contains(line, c.old) {
			t.Fatalf("%s: %q not in the line", c.name, c.old)
		}
		bad := strings.Replace(line, c.old, c.new, 1)
		err := ValidateJSON([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func FuzzValidateJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":[1,{"b":null}]}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`))
	r := stamped(sample(testIDs(), "cluster.add"))
	w := r.wire()
	c, _ := marshalCanonical(&w)
	f.Add(appendChain(c, strings.Repeat("a", 64)))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ValidateJSON(data) != nil {
			return
		}
		// Whatever the validator accepts, the decoder reads.
		if _, _, err := DecodeJSON(data); err != nil {
			t.Fatalf("ValidateJSON accepted what DecodeJSON refuses: %v\n%q", err, data)
		}
	})
}
