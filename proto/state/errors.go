package state

import "fmt"

// ErrorKind classifies why Dispatch refused a request (docs/protocol.md §5.3).
type ErrorKind int

// The kinds of refusal. The zero value is not a valid kind.
const (
	// NotFound: the object the request names does not exist.
	NotFound ErrorKind = iota + 1
	// Exists: the object the request adds is already there.
	Exists
	// NoChange: the request was valid but changed nothing.
	NoChange
	// WrongFieldValue: an enum field holds a value outside its type.
	WrongFieldValue
	// InvalidValue: a field holds a value the state refuses.
	InvalidValue
	// Certificate: a certificate or fingerprint could not be parsed.
	Certificate
	// Frontend: an HTTP frontend could not be made insertable.
	Frontend
	// Empty: the request carries no variant.
	Empty
	// NotStateVerb: the verb is not applied to the state at all (queries,
	// stops, upgrades...). The caller should not have dispatched it.
	NotStateVerb
)

var kindNames = map[ErrorKind]string{
	NotFound:        "NotFound",
	Exists:          "Exists",
	NoChange:        "NoChange",
	WrongFieldValue: "WrongFieldValue",
	InvalidValue:    "InvalidValue",
	Certificate:     "Certificate",
	Frontend:        "Frontend",
	Empty:           "Empty",
	NotStateVerb:    "NotStateVerb",
}

// String returns the kind's Go name ("NotFound").
func (k ErrorKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is a refusal by Dispatch. Text is upstream's wording without the
// supervisor's "could not dispatch request on the main process state: "
// prefix, so the supervisor can prepend it and stay byte-compatible.
// A refused request leaves the state unchanged.
type Error struct {
	Kind ErrorKind
	Text string
}

// Error returns Text.
func (e *Error) Error() string { return e.Text }

func notFound(object, id string) *Error {
	return &Error{NotFound, fmt.Sprintf("Did not find %s with address or id '%s'", object, escapeText(id))}
}

func exists(object, id string) *Error {
	return &Error{Exists, fmt.Sprintf("%s '%s' already exists", object, escapeText(id))}
}

func noChange() *Error {
	return &Error{NoChange, "dispatching this request did not bring any change to the state"}
}

func wrongFieldValue(detail string) *Error {
	return &Error{WrongFieldValue, "Wrong field value: " + detail}
}

func invalidValue(field, reason string) *Error {
	return &Error{InvalidValue, fmt.Sprintf("Invalid value for field '%s': %s", field, reason)}
}

// certificateError builds "Could not <op> certificate: <detail>", op being
// add, remove or replace.
func certificateError(op, detail string) *Error {
	return &Error{Certificate, fmt.Sprintf("Could not %s certificate: %s", op, detail)}
}

func frontendError(key, detail string) *Error {
	return &Error{Frontend, fmt.Sprintf("Could not convert the frontend to an insertable one. Frontend: %s error: %s", escapeText(key), detail)}
}

func emptyRequest() *Error { return &Error{Empty, "Request came in empty"} }

func notStateVerb(verb string) *Error {
	return &Error{NotStateVerb, "State can not handle this request: " + verb}
}
