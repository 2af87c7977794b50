package http1

import "strconv"

// Status codes carried by *Error.
const (
	StatusBadRequest                  = 400
	StatusRequestURITooLong           = 414
	StatusExpectationFailed           = 417
	StatusRequestHeaderFieldsTooLarge = 431
	StatusNotImplemented              = 501
	StatusBadGateway                  = 502
	StatusHTTPVersionNotSupported     = 505
)

// Error is a protocol fault found in a message. Status is the status code the
// proxy answers with (always 502 for a fault in a response); Reason names the
// fault in RFC 9112 words; Offset is the byte offset, in the input given to
// the parser (for a ChunkedDecoder: in the body stream since the last Reset),
// at which the fault was found. The connection must be closed after an Error:
// the framing of what follows is unknown.
type Error struct {
	Status int
	Reason string
	Offset int
}

// Error formats the fault as "http1: <status> <reason> at offset <n>".
func (e *Error) Error() string {
	return "http1: " + strconv.Itoa(e.Status) + " " + e.Reason + " at offset " + strconv.Itoa(e.Offset)
}

// errAt builds an *Error; for a response every status becomes 502.
func errAt(status int, reason string, off int, response bool) *Error {
	if response {
		status = StatusBadGateway
	}
	return &Error{Status: status, Reason: reason, Offset: off}
}
