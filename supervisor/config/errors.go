package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid matches (with errors.Is) every error returned by Load and Parse
// that the operator can fix by editing the configuration or the files it
// names. Callers map it to "invalid configuration" (exit code 78). Nothing in
// this package produces another class of error: there is no internal state.
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem found in a configuration file. Its text reads
//
//	<file>:<line>:<col>: <key path>: <message>
//
// where the position is left out when unknown and the key path (dotted, with
// array indices, e.g. clusters.shop.backends[1].address) is left out for
// syntax errors, but for a number TOML cannot hold (the key as the parser
// read it: dotted, without array indices).
type Error struct {
	File string // the path as given to Load or Parse
	Line int    // 1-based; 0 when unknown
	Col  int    // 1-based byte column; 0 when unknown
	Key  string // dotted key path; "" for syntax errors (see above)
	Msg  string // what is wrong, in operator terms
	Err  error  // underlying cause (an *fs.PathError, …), may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports that every Error is an ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Errors is every problem found in one configuration (the first 100 found,
// then one line counting the others), sorted by position (problems without
// a position come last, in the order they were found).
// Its text has one problem per line.
type Errors []error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As access to each problem.
func (es Errors) Unwrap() []error { return es }

// maxErrors is how many problems one configuration reports; beyond it, a
// last line counts the others (a file of a million bad entries must not
// make a million messages).
const maxErrors = 100

// errorList collects problems while a configuration is checked.
type errorList struct {
	file string
	pos  positions
	errs []*Error
	bad  map[string]bool // key paths that already have an error
	more int             // problems found beyond maxErrors
}

func newErrorList(file string, pos positions) *errorList {
	return &errorList{file: file, pos: pos, bad: map[string]bool{}}
}

// full reports that further problems are only counted (see maxErrors), so
// that callers may skip the work of wording them.
func (l *errorList) full() bool { return len(l.errs) >= maxErrors }

// at records a problem about the value at key path p (positioned on the
// value when known, else on the key).
func (l *errorList) at(p string, format string, args ...any) {
	l.add(p, l.pos.value(p), nil, format, args...)
}

// atKey records a problem about the key itself (unknown or misplaced key).
func (l *errorList) atKey(p string, format string, args ...any) {
	l.add(p, l.pos.key(p), nil, format, args...)
}

// wrap records a problem about the value at p caused by err.
func (l *errorList) wrap(p string, err error, format string, args ...any) {
	l.add(p, l.pos.value(p), err, format, args...)
}

func (l *errorList) add(p string, at position, err error, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		l.more++
		return
	}
	l.bad[p] = true
	l.errs = append(l.errs, &Error{
		File: l.file, Line: at.line, Col: at.col, Key: p,
		Msg: fmt.Sprintf(format, args...), Err: err,
	})
}

// result returns the sorted problems, or nil when there are none.
func (l *errorList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := make(Errors, len(l.errs), len(l.errs)+1)
	for i, e := range l.errs {
		out[i] = e
	}
	if l.more > 0 {
		out = append(out, &Error{File: l.file, Msg: fmt.Sprintf("and %d more problems (only the first %d found are listed)", l.more, maxErrors)})
	}
	return out
}
