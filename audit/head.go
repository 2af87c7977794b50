package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sealed head: where each file sink's trail ended when the broker last
// wrote to it, kept outside the trail so that records cut off the end of a
// file (at a line boundary) are noticed at the next start. The file has
// two lines:
//
//	{"schema":"sozu-audit-head/1","boot":3,"seq":9,"sinks":[…]}
//	<64 hex: HMAC-SHA256(key, "sozu-audit-head/1\x00" ‖ first line)>
//
// The seal uses the chain's HMAC key (a different input prefix, so a seal
// is never a record's chain), so whoever cannot forge records cannot forge
// a head either. It is rewritten atomically after each batch of records.

// HeadSchema names the head file's format; it starts the sealed input.
const HeadSchema = "sozu-audit-head/1"

// HeadSuffix is appended to the HMAC key file's path to name the head file
// (HeadPath).
const HeadSuffix = ".head"

// maxHead bounds what is read of a head file.
const maxHead = 64 << 10

// HeadPath is the head file of the key file keyPath: keyPath + ".head",
// beside the key, with the key's protection.
func HeadPath(keyPath string) string { return keyPath + HeadSuffix }

// Head is the sealed end of the trail.
type Head struct {
	Schema string     `json:"schema"`
	Boot   uint64     `json:"boot"`  // boot generation of the last record
	Seq    uint64     `json:"seq"`   // last seq any sink took
	Sinks  []HeadSink `json:"sinks"` // the file sinks (stdout and stderr are not tracked)
}

// HeadSink is where one file sink ended.
type HeadSink struct {
	Format string `json:"format"` // "json" or "text"
	Target string `json:"target"` // the configured path
	Seq    uint64 `json:"seq"`    // the last seq this file took (0: none yet)
	Chain  string `json:"chain,omitempty"`
}

// Entry returns the head of the sink with this format and target, or nil.
func (h *Head) Entry(format Format, target string) *HeadSink {
	name := formatName(format)
	for i := range h.Sinks {
		if h.Sinks[i].Format == name && h.Sinks[i].Target == target {
			return &h.Sinks[i]
		}
	}
	return nil
}

// JSONEntry returns the head of the (only) JSON sink, or nil.
func (h *Head) JSONEntry() *HeadSink {
	for i := range h.Sinks {
		if h.Sinks[i].Format == "json" {
			return &h.Sinks[i]
		}
	}
	return nil
}

// hexChain is a chain as records and heads write it.
func hexChain(c [32]byte) string { return hex.EncodeToString(c[:]) }

func formatName(f Format) string {
	if f == FormatJSON {
		return "json"
	}
	return "text"
}

// HeadError is a head file that cannot be trusted: absent (Err wraps
// os.ErrNotExist), unreadable, malformed, with a broken seal, or (for the
// broker) not protected as the key is.
type HeadError struct {
	Path string
	Err  error
}

func (e *HeadError) Error() string { return fmt.Sprintf("audit head file %s: %v", e.Path, e.Err) }
func (e *HeadError) Unwrap() error { return e.Err }

// sealHead is the seal of a head's first line.
func sealHead(key, body []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(HeadSchema + "\x00"))
	m.Write(body)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// encodeHead returns the file content of h sealed with key.
func encodeHead(key []byte, h *Head) ([]byte, error) {
	h.Schema = HeadSchema
	body, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	seal := sealHead(key, body)
	out := make([]byte, 0, len(body)+2+2*len(seal))
	out = append(append(out, body...), '\n')
	out = hex.AppendEncode(out, seal[:])
	return append(out, '\n'), nil
}

// DecodeHead checks data's seal with key and decodes it.
func DecodeHead(data, key []byte) (*Head, error) {
	body, rest, ok := bytes.Cut(data, []byte("\n"))
	sealHex, after, ok2 := bytes.Cut(rest, []byte("\n"))
	if !ok || !ok2 || len(after) != 0 {
		return nil, errors.New("not two lines (a JSON head and its seal)")
	}
	seal, okSeal := decodeChain(string(sealHex))
	if !okSeal {
		return nil, errors.New("the seal is not 64 lowercase hex digits")
	}
	want := sealHead(key, body)
	if !hmac.Equal(want[:], seal[:]) {
		return nil, errors.New("the seal does not match: the head was edited, or sealed with another key")
	}
	var h Head
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("sealed but undecodable: %v", err)
	}
	if h.Schema != HeadSchema {
		return nil, fmt.Errorf("schema %q, want %q", h.Schema, HeadSchema)
	}
	for _, s := range h.Sinks {
		if s.Format != "json" && s.Format != "text" {
			return nil, fmt.Errorf("sink %s has format %q", s.Target, s.Format)
		}
		if s.Format == "json" {
			if _, ok := decodeChain(s.Chain); !ok {
				return nil, fmt.Errorf("JSON sink %s: chain is not 64 lowercase hex digits", s.Target)
			}
		}
	}
	return &h, nil
}

// ReadHead reads and unseals the head file at path with key. strict (the
// broker) also requires what LoadOrCreateKey requires of the key: a
// regular file owned by the effective uid, no group or other access; a
// verifier reading an assessor's copy passes false. The file is opened
// O_NOFOLLOW. Every error is a *HeadError; an absent file wraps
// os.ErrNotExist.
func ReadHead(path string, key []byte, strict bool) (*Head, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &HeadError{path, errors.New("is a symbolic link: refusing it")}
		}
		return nil, &HeadError{path, unwrapPath(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &HeadError{path, unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &HeadError{path, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())}
	}
	if strict {
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, &HeadError{path, fmt.Errorf("has mode %04o: group and others must have no access", perm)}
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != uint32(os.Geteuid()) {
			return nil, &HeadError{path, fmt.Errorf("is owned by uid %d, not by this process (uid %d)", st.Uid, os.Geteuid())}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHead+1))
	if err != nil {
		return nil, &HeadError{path, unwrapPath(err)}
	}
	if len(data) > maxHead {
		return nil, &HeadError{path, fmt.Errorf("longer than %d bytes: not a head file", maxHead)}
	}
	h, err := DecodeHead(data, key)
	if err != nil {
		return nil, &HeadError{path, err}
	}
	return h, nil
}

// WriteHead seals h with key and replaces the file at path atomically:
// path + ".tmp" is written (O_NOFOLLOW, mode 0600 whatever the umask),
// fdatasync'ed when fsync is set, and renamed over path. A crash leaves
// either the old head or the new one, never a mix; the head may then be
// behind the trail by the records of one batch, which the broker accepts
// when the head's record is among the file's last lines.
func WriteHead(path string, key []byte, h *Head, fsync bool) error {
	data, err := encodeHead(key, h)
	if err != nil {
		return &HeadError{path, err}
	}
	tmp := path + ".tmp"
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return &HeadError{tmp, errors.New("is a symbolic link: refusing it")}
		}
		return &HeadError{tmp, err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	fail := func(op string, err error) error {
		f.Close()
		os.Remove(tmp)
		return &HeadError{tmp, fmt.Errorf("%s: %w", op, unwrapPath(err))}
	}
	if err := f.Chmod(0o600); err != nil {
		return fail("chmod 0600", err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	if fsync {
		if err := unix.Fdatasync(fd); err != nil {
			return fail("fdatasync", err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return &HeadError{tmp, fmt.Errorf("close: %w", unwrapPath(err))}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return &HeadError{path, fmt.Errorf("renaming %s over it: %w", filepath.Base(tmp), unwrapPath(err))}
	}
	return nil
}
