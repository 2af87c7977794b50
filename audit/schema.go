package audit

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// schemaJSON is the JSON schema (draft 2020-12) of a JSON record; a test
// keeps docs/audit-record.schema.json identical to it.
//
//go:embed record.schema.json
var schemaJSON []byte

// Schema returns the JSON schema of a JSON record (a copy).
func Schema() []byte { return bytes.Clone(schemaJSON) }

var recordSchema = func() *schemaNode {
	n, err := compileSchema(schemaJSON)
	if err != nil {
		panic("audit: internal error: record.schema.json: " + err.Error())
	}
	return n
}()

// ValidateJSON checks one JSON record line (its newline optional) against
// the record schema, and beyond it: one line, no duplicate key, the event
// name matching the code. The error names the first offending field as a
// JSON pointer ("/actor/uid: …"). It does not check the chain (Verify).
func ValidateJSON(line []byte) error {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("audit record: more than one line")
	}
	v, err := parseStrict(line)
	if err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	if err := recordSchema.validate(v, ""); err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	obj := v.(map[string]any)
	if code, _ := obj["code"].(string); Code(code).Name() != obj["event"] {
		return fmt.Errorf("audit record: /event: %v is not the name of code %s (%s)", obj["event"], code, Code(code).Name())
	}
	return nil
}

// ValidateFile runs ValidateJSON on every line of a JSON audit file (for
// tests that check every record they caused). The error names the line.
func ValidateFile(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if len(line) > 0 {
			if verr := ValidateJSON(line); verr != nil {
				return fmt.Errorf("line %d: %w", n, verr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
}

// parseStrict decodes one JSON value into maps, slices, strings,
// json.Numbers, bools and nils, refusing duplicate object keys and
// trailing data.
func parseStrict(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

const maxDepth = 16

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("JSON nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				k := kt.(string)
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				if m[k], err = parseValue(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return m, nil
		case '[':
			var a []any
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return a, nil
		}
		return nil, fmt.Errorf("invalid JSON: unexpected %v", t)
	default:
		return t, nil
	}
}

// schemaNode is the subset of JSON Schema the record schema uses: type
// (one or a list), required, properties, additionalProperties (false),
// enum, pattern, maxLength, minimum, maximum and format date-time.
// Annotations ($schema, $id, title, description) are accepted and ignored;
// any other keyword is refused when compiling, so the schema cannot use a
// keyword this validator would silently skip.
type schemaNode struct {
	types      []string
	required   []string
	properties map[string]*schemaNode
	closed     bool // additionalProperties: false
	enum       []any
	pattern    *regexp.Regexp
	maxLength  int // -1: none
	minimum    *big.Rat
	maximum    *big.Rat
	dateTime   bool
}

var dateTimePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`)

// validDateTime checks an RFC 3339 date-time: its shape, then its values
// (month 13 or second 61 match the shape only).
func validDateTime(s string) bool {
	if !dateTimePattern.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	return err == nil
}

func compileSchema(data []byte) (*schemaNode, error) {
	v, err := parseStrict(data)
	if err != nil {
		return nil, err
	}
	return compileNode(v, "")
}

func compileNode(v any, at string) (*schemaNode, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a schema must be an object", at)
	}
	n := &schemaNode{maxLength: -1}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := m[k]
		bad := func() error { return fmt.Errorf("%s: keyword %s: unexpected value %v", at, k, val) }
		switch k {
		case "$schema", "$id", "title", "description":
		case "type":
			switch t := val.(type) {
			case string:
				n.types = []string{t}
			case []any:
				for _, e := range t {
					s, ok := e.(string)
					if !ok {
						return nil, bad()
					}
					n.types = append(n.types, s)
				}
			default:
				return nil, bad()
			}
			for _, t := range n.types {
				if !slices.Contains([]string{"object", "array", "string", "integer", "number", "boolean", "null"}, t) {
					return nil, fmt.Errorf("%s: unknown type %q", at, t)
				}
			}
		case "required":
			a, ok := val.([]any)
			if !ok {
				return nil, bad()
			}
			for _, e := range a {
				s, ok := e.(string)
				if !ok {
					return nil, bad()
				}
				n.required = append(n.required, s)
			}
		case "properties":
			pm, ok := val.(map[string]any)
			if !ok {
				return nil, bad()
			}
			n.properties = map[string]*schemaNode{}
			for pk, pv := range pm {
				c, err := compileNode(pv, at+"/"+pk)
				if err != nil {
					return nil, err
				}
				n.properties[pk] = c
			}
		case "additionalProperties":
			if b, ok := val.(bool); !ok || b {
				return nil, fmt.Errorf("%s: only additionalProperties: false is supported", at)
			}
			n.closed = true
		case "enum":
			a, ok := val.([]any)
			if !ok || len(a) == 0 {
				return nil, bad()
			}
			n.enum = a
		case "pattern":
			s, ok := val.(string)
			if !ok {
				return nil, bad()
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("%s: pattern: %w", at, err)
			}
			n.pattern = re
		case "maxLength":
			num, ok := val.(json.Number)
			i, err := strconv.Atoi(string(num))
			if !ok || err != nil || i < 0 {
				return nil, bad()
			}
			n.maxLength = i
		case "minimum", "maximum":
			num, ok := val.(json.Number)
			if !ok {
				return nil, bad()
			}
			f, ok := new(big.Rat).SetString(string(num))
			if !ok {
				return nil, bad()
			}
			if k == "minimum" {
				n.minimum = f
			} else {
				n.maximum = f
			}
		case "format":
			if val != "date-time" {
				return nil, fmt.Errorf("%s: only format date-time is supported", at)
			}
			n.dateTime = true
		default:
			return nil, fmt.Errorf("%s: keyword %q is not supported by this validator", at, k)
		}
	}
	return n, nil
}

// typeOf names the JSON type of a parsed value ("integer" for a number
// without fraction or exponent).
func typeOf(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if strings.ContainsAny(string(t), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (n *schemaNode) validate(v any, at string) error {
	where := at
	if where == "" {
		where = "/"
	}
	t := typeOf(v)
	if len(n.types) > 0 && !slices.Contains(n.types, t) && !(t == "integer" && slices.Contains(n.types, "number")) {
		return fmt.Errorf("%s: want %s, got %s", where, strings.Join(n.types, " or "), t)
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return jsonEqual(e, v) }) {
		return fmt.Errorf("%s: %v is not one of %v", where, v, n.enum)
	}
	switch t {
	case "string":
		s := v.(string)
		if n.maxLength >= 0 && utf8.RuneCountInString(s) > n.maxLength {
			return fmt.Errorf("%s: %d characters, more than %d", where, utf8.RuneCountInString(s), n.maxLength)
		}
		if n.pattern != nil && !n.pattern.MatchString(s) {
			return fmt.Errorf("%s: %q does not match %s", where, s, n.pattern)
		}
		if n.dateTime && !validDateTime(s) {
			return fmt.Errorf("%s: %q is not an RFC 3339 date-time", where, s)
		}
	case "integer", "number":
		// Exact comparison: float64 cannot tell 2^64-1 from 2^64.
		f, ok := new(big.Rat).SetString(string(v.(json.Number)))
		if !ok {
			return fmt.Errorf("%s: %v is not a number", where, v)
		}
		if n.minimum != nil && f.Cmp(n.minimum) < 0 {
			return fmt.Errorf("%s: %v is below the minimum %s", where, v, n.minimum.RatString())
		}
		if n.maximum != nil && f.Cmp(n.maximum) > 0 {
			return fmt.Errorf("%s: %v is above the maximum %s", where, v, n.maximum.RatString())
		}
	case "object":
		m := v.(map[string]any)
		for _, r := range n.required {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%s/%s: required key missing", at, r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c, ok := n.properties[k]
			if !ok {
				if n.closed {
					return fmt.Errorf("%s/%s: key not allowed", at, k)
				}
				continue
			}
			if err := c.validate(m[k], at+"/"+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonEqual compares an enum value (a scalar) with a parsed value.
func jsonEqual(a, b any) bool {
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}
