// Package http1 is the worker's strict HTTP/1.1 codec (RFC 9112, RFC 9110 field syntax):
// request and response heads, chunked bodies and canonical re-serialization, with no networking.
//
// Parsers work over caller-owned byte slices and return sub-slices of them:
// nothing is copied, so a parsed Request or Response is valid only while its
// input buffer is left untouched. On the hot path (a well-formed head parsed
// into a reused Request) nothing is allocated.
//
// Every rejection is an *Error carrying the status the proxy answers with:
// 400, 414, 417, 431, 501 or 505 for requests, 502 for anything wrong in a
// backend's response. Any doubt about message framing is a rejection.
package http1
