package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/worker/http1"
)

// MaxCredential bounds the decoded "user:password" of an Authorization
// field (upstream's default basic_auth_max_credential_bytes); a longer
// one is refused without decoding.
const MaxCredential = 4096

// credBuf holds a decoded credential: base64 decoding may write up to 2
// bytes past the longest accepted one before it finds the padding.
type credBuf [MaxCredential + 3]byte

// Credentials are the accounts of a cluster's authorized_hashes, which
// frontends with required_auth check HTTP basic authentication against.
// Each entry is "user:" followed by the hexadecimal SHA-256 of the
// password (only the password is hashed, as upstream does). A nil or empty
// *Credentials accepts nobody. Immutable; safe for concurrent use.
type Credentials struct {
	accounts []account
}

// account holds digests only: a check compares fixed-size values, whatever
// the lengths of the names.
type account struct {
	digests [2 * sha256.Size]byte // SHA-256 of the user name, then of the password
}

// CredentialError is an authorized_hashes entry that NewCredentials left
// out. It names the entry by position, never by content: entries are
// secrets of a kind.
type CredentialError struct {
	Index int    // position of the entry
	Msg   string // what is wrong with it
}

func (e *CredentialError) Error() string {
	return fmt.Sprintf("authorized_hashes entry %d: %s", e.Index, e.Msg)
}

// NewCredentials parses authorized_hashes entries. Malformed entries are
// left out and reported, in order, as *CredentialError.
func NewCredentials(entries []string) (*Credentials, []error) {
	c := &Credentials{}
	var errs []error
	for i, e := range entries {
		bad := func(msg string) { errs = append(errs, &CredentialError{Index: i, Msg: msg}) }
		colon := strings.LastIndexByte(e, ':')
		if colon < 0 {
			bad("no ':' between the user name and the password hash")
			continue
		}
		user, digest := e[:colon], e[colon+1:]
		var a account
		if strings.IndexByte(user, ':') >= 0 {
			bad("a basic-auth user name has no ':'")
			continue
		}
		// The length first: hex.Decode writes past a destination too
		// short for its input.
		if len(digest) != 2*sha256.Size {
			bad("the password hash is not 64 hexadecimal digits (the SHA-256 of the password)")
			continue
		}
		if n, err := hex.Decode(a.digests[sha256.Size:], []byte(digest)); err != nil || n != sha256.Size {
			bad("the password hash is not 64 hexadecimal digits (the SHA-256 of the password)")
			continue
		}
		u := sha256.Sum256([]byte(user))
		copy(a.digests[:sha256.Size], u[:])
		c.accounts = append(c.accounts, a)
	}
	return c, errs
}

// Len returns the number of accounts.
func (c *Credentials) Len() int {
	if c == nil {
		return 0
	}
	return len(c.accounts)
}

var errNoCredentials = errors.New("no basic credentials")

// Check reports whether req carries exactly one Authorization field with
// basic credentials (RFC 7617) of an account of c. It compares with every
// account, in constant time, whatever matches; it does not allocate, and
// clears the decoded password.
func (c *Credentials) Check(req *http1.Request) bool {
	var value []byte
	n := 0
	for i := range req.Fields {
		if equalFold(req.Fields[i].Name, "authorization") {
			value = req.Fields[i].Value
			n++
		}
	}
	if n != 1 || c.Len() == 0 {
		return false
	}
	var buf credBuf
	user, pass, err := basicCredentials(&buf, value)
	if err != nil {
		return false
	}
	var cand [2 * sha256.Size]byte
	u, p := sha256.Sum256(user), sha256.Sum256(pass)
	clear(buf[:])
	copy(cand[:sha256.Size], u[:])
	copy(cand[sha256.Size:], p[:])
	ok := 0
	for i := range c.accounts {
		ok |= subtle.ConstantTimeCompare(cand[:], c.accounts[i].digests[:])
	}
	return ok == 1
}

// basicCredentials decodes the value of an Authorization field: the
// "Basic" scheme (any case), spaces, then base64 of "user:password",
// decoded into buf.
func basicCredentials(buf *credBuf, v []byte) (user, pass []byte, err error) {
	if len(v) < 6 || !equalFold(v[:5], "basic") || v[5] != ' ' {
		return nil, nil, errNoCredentials
	}
	v = v[6:]
	for len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > base64.StdEncoding.EncodedLen(MaxCredential) {
		return nil, nil, errNoCredentials
	}
	n, err := base64.StdEncoding.Decode(buf[:], v)
	if err != nil {
		return nil, nil, errNoCredentials
	}
	for i := 0; i < n; i++ {
		if buf[i] == ':' {
			return buf[:i], buf[i+1 : n], nil
		}
	}
	return nil, nil, errNoCredentials
}

// DefaultChallenge is the WWW-Authenticate value of a 401 for a frontend
// with required_auth whose cluster has no www_authenticate.
const DefaultChallenge = `Basic realm="Restricted"`

// Challenge turns a cluster's www_authenticate into a WWW-Authenticate
// value: one that starts with the Basic scheme is used as is (upstream
// sends the setting verbatim, e.g. `Basic realm="shop"`); anything else is
// taken as a realm and quoted. Control bytes are refused.
func Challenge(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("control character %q", v[i:i+1])
		}
	}
	if len(v) >= 5 && strings.EqualFold(v[:5], "basic") && (len(v) == 5 || v[5] == ' ') {
		return v, nil
	}
	var b strings.Builder
	b.WriteString(`Basic realm="`)
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String(), nil
}
