package proxy

// appendLines inserts field lines at the end of head, a serialized head
// that ends with its empty line.
func appendLines(head, lines []byte) []byte {
	if len(lines) == 0 || len(head) < 2 {
		return head
	}
	head = append(head[:len(head)-2], lines...)
	return append(head, '\r', '\n')
}

// appendFrontendFields adds to head, a serialized request head, the
// X-Forwarded-Host of a request whose host fe rewrote and fe's request
// fields.
func (s *session) appendFrontendFields(head []byte, fe *Frontend) []byte {
	xfh := fe.RewriteHost != nil || fe.RewritePort != 0
	lines := fe.Request.FieldLines()
	if !xfh && len(lines) == 0 || len(head) < 2 {
		return head
	}
	head = head[:len(head)-2]
	if xfh {
		head = append(head, "X-Forwarded-Host: "...)
		head = append(head, s.xfHost...)
		head = append(head, '\r', '\n')
	}
	head = append(head, lines...)
	return append(head, '\r', '\n')
}
