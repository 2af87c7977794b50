package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decode parses data and fills a rawConfig. A syntax error stops everything
// (and is returned alone); every other problem — wrong type, bad value,
// unknown key — is recorded in the returned list and decoding goes on, so one
// run reports them all.
//
// Why not toml.Decode straight into rawConfig and MetaData.Undecoded()? The
// decoder stops at the first bad value (found in map order, so not even the
// first in the file), MetaData positions are shared by all elements of an
// array, and Undecoded() drops array indices. Decoding into a generic tree
// and walking it ourselves keeps BurntSushi's parser and fixes all three.
//
// A document larger than MaxConfigSize, nesting deeper than maxDepth or
// with a key longer than maxKeyLength is
// refused (alone) before the TOML parser sees it: both bound the time and
// memory that parsing and indexing take.
func decode(data []byte, file string) (*rawConfig, *errorList, error) {
	if len(data) > MaxConfigSize {
		return nil, nil, Errors{&Error{File: file, Msg: fmt.Sprintf("the configuration is %d bytes long: the limit is %d MiB", len(data), MaxConfigSize>>20)}}
	}
	pos, limit := scanPositions(string(data))
	if limit != nil {
		return nil, nil, Errors{&Error{File: file, Line: limit.at.line, Col: limit.at.col, Msg: limit.msg}}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, nil, syntaxError(file, err)
	}
	d := &decoder{errs: newErrorList(file, pos)}
	raw := new(rawConfig)
	d.value("", doc, reflect.ValueOf(raw).Elem())
	return raw, d.errs, nil
}

func syntaxError(file string, err error) error {
	e := &Error{File: file, Msg: err.Error(), Err: err}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Col, e.Msg = pe.Position.Line, pe.Position.Col, "syntax error: "+pe.Message
		// A number TOML cannot hold is a value error of the key just
		// read: name it (as the parser has it: its tables dotted, no
		// array index).
		if pe.LastKey != "" && strings.Contains(pe.Message, "out of range") {
			e.Key, e.Msg = pe.LastKey, pe.Message+" (TOML numbers are 64-bit)"
		}
	}
	return Errors{e}
}

type decoder struct{ errs *errorList }

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// value stores v (a value of the generic tree) at key path p into rv and
// reports whether it could.
func (d *decoder) value(p string, v any, rv reflect.Value) bool {
	t := rv.Type()
	if t.Kind() == reflect.Pointer {
		nv := reflect.New(t.Elem())
		if !d.value(p, v, nv.Elem()) {
			return false
		}
		rv.Set(nv)
		return true
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		s, ok := v.(string)
		if !ok {
			return d.mismatch(p, "a string", v)
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errs.at(p, "%v", err)
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return d.mismatch(p, "a string", v)
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return d.mismatch(p, "a boolean", v)
		}
		rv.SetBool(b)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(int64)
		if !ok {
			return d.mismatch(p, "an integer", v)
		}
		limit := uint64(math.MaxUint64) >> (64 - t.Bits())
		if n < 0 || uint64(n) > limit {
			d.errs.at(p, "%d is out of range 0-%d", n, limit)
			return false
		}
		rv.SetUint(uint64(n))
	case reflect.Slice:
		return d.slice(p, v, rv)
	case reflect.Map:
		return d.mapping(p, v, rv)
	case reflect.Struct:
		return d.table(p, v, rv)
	default:
		panic("config: no decoder for " + t.String()) // a rawConfig field of a new kind
	}
	return true
}

func (d *decoder) slice(p string, v any, rv reflect.Value) bool {
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	default:
		return d.mismatch(p, "an array", v)
	}
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	for i, e := range elems {
		d.value(joinIndex(p, i), e, out.Index(i)) // a bad element stays zero (nil)
	}
	rv.Set(out)
	return true
}

func (d *decoder) mapping(p string, v any, rv reflect.Value) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return d.mismatch(p, "a table", v)
	}
	out := reflect.MakeMapWithSize(rv.Type(), len(m))
	for _, k := range sortedKeys(m) {
		ev := reflect.New(rv.Type().Elem()).Elem()
		if d.value(joinKey(p, k), m[k], ev) {
			out.SetMapIndex(reflect.ValueOf(k), ev)
		}
	}
	rv.Set(out)
	return true
}

func (d *decoder) table(p string, v any, rv reflect.Value) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return d.mismatch(p, "a table", v)
	}
	fields := tomlFields(rv.Type())
	for _, k := range sortedKeys(m) {
		kp := joinKey(p, k)
		i, ok := fields[k]
		if !ok {
			hint := ""
			if !d.errs.full() {
				if hint = suggest(k, fields); hint == "" {
					hint = elsewhere(k, rv.Type())
				}
			}
			d.errs.atKey(kp, "unknown key%s", hint)
			continue
		}
		d.value(kp, m[k], rv.Field(i))
	}
	return true
}

func (d *decoder) mismatch(p, want string, v any) bool {
	d.errs.at(p, "expected %s, found %s", want, tomlTypeOf(v))
	return false
}

func tomlTypeOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date-time" // toml local date and time types
}

// tomlFields maps the toml tag of each field of struct type t to its index.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" {
			fields[tag] = i
		}
	}
	return fields
}

// suggest returns ` (did you mean "x"?)` for the known key closest to k, if
// one is close enough to be a typo.
func suggest(k string, fields map[string]int) string {
	if len(k) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for f := range fields {
		dist := editDistance(strings.ToLower(k), f)
		if dist < bestDist || dist == bestDist && f < best {
			best, bestDist = f, dist
		}
	}
	if best == "" || bestDist > len(k)/3 && !strings.EqualFold(k, best) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// keyTables are the tables of the file, by the raw struct decoding them,
// as elsewhere names them.
var keyTables = []struct {
	name string
	t    reflect.Type
}{
	{"the top level", reflect.TypeOf(rawConfig{})},
	{"[metrics]", reflect.TypeOf(rawMetrics{})},
	{"[[listeners]]", reflect.TypeOf(rawListener{})},
	{"an hsts table", reflect.TypeOf(rawHSTS{})},
	{"[clusters.<id>]", reflect.TypeOf(rawCluster{})},
	{"a cluster's frontends", reflect.TypeOf(rawFrontend{})},
	{"a frontend's headers", reflect.TypeOf(rawHeader{})},
	{"a cluster's backends", reflect.TypeOf(rawBackend{})},
	{"[clusters.<id>.health_check]", reflect.TypeOf(rawHealthCheck{})},
	{"[clusters.<id>.udp]", reflect.TypeOf(rawUDP{})},
	{"[clusters.<id>.udp.health]", reflect.TypeOf(rawUDPHealth{})},
}

// elsewhere returns ` (a key of X, not of this table)` when k, unknown in
// the table decoded as t, is a key of other tables: a key written in the
// wrong place (a listener's h2_* at the top level, say) is not a typo.
func elsewhere(k string, t reflect.Type) string {
	var in []string
	for _, kt := range keyTables {
		if kt.t == t {
			continue
		}
		if _, ok := tomlFields(kt.t)[k]; ok {
			in = append(in, kt.name)
		}
	}
	if len(in) == 0 {
		return ""
	}
	return fmt.Sprintf(" (a key of %s, not of this table)", strings.Join(in, " or "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
