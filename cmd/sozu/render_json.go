package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sozu-go/sozu/proto/command"
)

// With --json the CLI prints exactly one JSON document on stdout for every
// verb that got a terminal answer from the supervisor, OK or FAILURE:
//
//	{
//	  "status": "OK" | "FAILURE",
//	  "message": "<the supervisor's message>",
//	  "content": { <ResponseContent> }
//	}
//
// "content" is left out when the answer has none. Its value is the protobuf
// JSON mapping of command.ResponseContent with the .proto field names
// (snake_case): the set oneof variant is the only key ("workers",
// "worker_responses", "frontend_list", "listeners_list", "clusters",
// "cluster_hashes", …); unset optional fields are left out; enums are
// names ("RUNNING"); integers are numbers, 64-bit ones too (protojson
// writes those as strings; upstream's serde writes numbers, and counts are
// numbers to every reader; a value over 2^53, as a cluster hash usually
// is, needs a reader that keeps large integers exact: jq 1.7, Python,
// Go's json.Number, not JavaScript's Number); map keys are sorted; private keys (the "key" of a certificate
// or of an HTTPS listener) read "<redacted>". The document is indented by
// two spaces and ends with a newline; the same answer always prints the
// same bytes.
// PROCESSING answers are not printed. Errors of the CLI itself (usage,
// unreachable supervisor, bad configuration) print nothing on stdout, only
// a message on stderr, and are told apart by the exit code. `config check`
// and `version` print the same envelope without content; a failed
// `config check` adds "errors": ["<one problem per item>", …], and
// "warnings": [...] for the keys written but not in force.
const jsonDoc = `JSON output (-j): one document on stdout per answered verb:
  {"status": "OK"|"FAILURE", "message": "...", "content": {...}}
  content (absent when empty) is the protobuf JSON form of ResponseContent
  with .proto field names, integers as numbers (64-bit ones too: cluster
  hashes over 2^53 need a reader keeping large integers, e.g. jq 1.7); map
  keys are sorted; private keys read "<redacted>".`

// jsonEnvelope is the --json document. Field order is the output order.
type jsonEnvelope struct {
	Status  string          `json:"status"`
	Message string          `json:"message"`
	Content json.RawMessage `json:"content,omitempty"`
	Errors  []string        `json:"errors,omitempty"`
	// Warnings: `config check`'s keys not in force, one line each.
	Warnings []string `json:"warnings,omitempty"`
	// Notes: what `config check`'s configuration does that the file does
	// not spell out (a listener created for a frontend), one line each.
	Notes []string `json:"notes,omitempty"`
}

// renderJSON renders a terminal response as the --json document. It fails
// only when the content cannot be expressed in JSON (invalid UTF-8 in a
// string field).
func renderJSON(r *command.Response) ([]byte, error) {
	r = redactResponse(r)
	env := jsonEnvelope{Status: r.GetStatus().String(), Message: r.GetMessage()}
	if r.GetContent() != nil {
		c, err := contentJSON(r.GetContent())
		if err != nil {
			return nil, err
		}
		env.Content = c
	}
	return encodeJSON(env)
}

// contentJSON is the JSON form of c (marshalProto), indented.
func contentJSON(c *command.ResponseContent) ([]byte, error) {
	raw, err := marshalProto(c.ProtoReflect())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// encodeJSON writes v indented, without HTML escaping, newline-terminated.
// C1 control characters (U+0080–U+009F), which encoding/json leaves raw and
// some terminals obey, are written as \u escapes; they can only occur
// inside strings, where the escape means the same.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return escapeC1(b.Bytes()), nil
}

// encodeJSONLine writes v as one compact line (no HTML escaping, C1
// controls escaped as in encodeJSON), newline-terminated.
func encodeJSONLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return escapeC1(b.Bytes()), nil
}

// escapeC1 writes the C1 control characters of a JSON text as \u escapes.
func escapeC1(out []byte) []byte {
	if !bytes.ContainsFunc(out, isC1) {
		return out
	}
	var esc bytes.Buffer
	for _, r := range string(out) {
		if isC1(r) {
			fmt.Fprintf(&esc, "\\u%04x", r)
		} else {
			esc.WriteRune(r)
		}
	}
	return esc.Bytes()
}

func isC1(r rune) bool { return r >= 0x80 && r <= 0x9f }
