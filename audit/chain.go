package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// The chain: each JSON record carries
//
//	chain = hex(HMAC-SHA256(key, prev ‖ canonical))
//
// where canonical is the record's line without its trailing
// `,"chain":"…"` field (the line ends with `}` instead) and prev is the 32
// raw bytes of the previous record's chain in the same file, or, for an
// anchoring record (prev_seq set), the bytes of its prev_chain field. A
// chain that starts from nothing anchors on prev_seq 0 and 32 zero bytes.

// KeySize is the size of a key created by LoadOrCreateKey, and the least a
// key file may hold.
const KeySize = 32

// KeyError is an operator error about the HMAC key file: it names the
// file and what to do.
type KeyError struct {
	Path string
	Err  error
}

func (e *KeyError) Error() string { return fmt.Sprintf("audit HMAC key file %s: %v", e.Path, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// LoadOrCreateKey reads the HMAC key at path, creating it first when absent:
// KeySize random bytes written as hex on one line, mode 0600 whatever the
// umask, parent directories created 0750. The file is opened with
// O_NOFOLLOW (a symlink is refused) and must be a regular file owned by
// this process's effective uid, with no group or other permission bits;
// anything else is refused, because whoever can read the key can forge
// records and whoever can write it can make the verifier accept them.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	if path == "" {
		return nil, false, &KeyError{Path: `""`, Err: errors.New("no path: set audit_hmac_key_file")}
	}
	key, err = readKey(path, true)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	if err := createKey(path); err != nil {
		if errors.Is(err, os.ErrExist) { // created concurrently: read it
			key, err = readKey(path, true)
			return key, false, err
		}
		return nil, false, err
	}
	key, err = readKey(path, true)
	return key, err == nil, err
}

// ReadKeyFile reads an HMAC key file for verification (`sozu audit
// verify`): O_NOFOLLOW and a regular file, but neither owner nor mode is
// checked, so that an assessor may verify with a copy of the key.
func ReadKeyFile(path string) ([]byte, error) { return readKey(path, false) }

func readKey(path string, strict bool) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &KeyError{path, errors.New("is a symbolic link: refusing it (point audit_hmac_key_file at the real file)")}
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, &KeyError{path, os.ErrNotExist}
		}
		return nil, &KeyError{path, unwrapPath(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyError{path, unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{path, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())}
	}
	if strict {
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, &KeyError{path, fmt.Errorf("has mode %04o: group and others must have no access (chmod 0600)", perm)}
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != uint32(os.Geteuid()) {
			return nil, &KeyError{path, fmt.Errorf("is owned by uid %d, not by this process (uid %d): chown it", st.Uid, os.Geteuid())}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, &KeyError{path, unwrapPath(err)}
	}
	text := bytes.TrimSpace(data)
	key := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(key, text); err != nil || len(text)%2 != 0 {
		return nil, &KeyError{path, errors.New("does not hold a hex key (one line of hex digits)")}
	}
	if len(key) < KeySize {
		return nil, &KeyError{path, fmt.Errorf("holds a %d-byte key: want at least %d bytes (%d hex digits)", len(key), KeySize, 2*KeySize)}
	}
	return key, nil
}

func createKey(path string) error {
	if err := mkdirs(filepath.Dir(path)); err != nil {
		return &KeyError{path, err}
	}
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return &KeyError{path, fmt.Errorf("reading random bytes: %w", err)}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return &KeyError{path, fmt.Errorf("creating it: %w", unwrapPath(err))}
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(path)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		return &KeyError{path, fmt.Errorf("chmod 0600: %w", unwrapPath(err))}
	}
	if _, err := f.WriteString(hex.EncodeToString(raw[:]) + "\n"); err != nil {
		return &KeyError{path, fmt.Errorf("writing it: %w", unwrapPath(err))}
	}
	if err := f.Sync(); err != nil {
		return &KeyError{path, fmt.Errorf("fsync: %w", unwrapPath(err))}
	}
	if err := f.Close(); err != nil {
		return &KeyError{path, fmt.Errorf("closing it: %w", unwrapPath(err))}
	}
	ok = true
	syncDir(filepath.Dir(path))
	return nil
}

// chainOf computes a record's chain.
func chainOf(key []byte, prev [32]byte, canonical []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(prev[:])
	m.Write(canonical)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

func decodeChain(s string) ([32]byte, bool) {
	var out [32]byte
	if !sha256Pattern.MatchString(s) {
		return out, false
	}
	hex.Decode(out[:], []byte(s))
	return out, true
}

// tail is the end of an existing JSON file.
type tail struct {
	lines [][]byte // the last complete lines (at most the number asked), oldest first, without '\n'
	torn  int64    // bytes after the last newline: a record cut short
}

// maxTailScan bounds how far back readTail looks for the last records.
const maxTailScan = 1 << 20

// readTail reads the last want (at least 1) complete lines of f (size
// bytes long) by reading backwards from the end, so that opening a large
// file costs a few pages, not the file.
func readTail(f *os.File, size int64, want int) (tail, error) {
	var t tail
	if size == 0 {
		return t, nil
	}
	for chunk := int64(16 << 10); ; chunk *= 4 {
		n := min(chunk, size, maxTailScan)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return t, err
		}
		end := bytes.LastIndexByte(buf, '\n')
		t.torn = n - int64(end) - 1
		if end < 0 {
			t.torn = n
			if n == size || n == maxTailScan {
				return t, nil
			}
			continue
		}
		body := buf[:end] // complete lines, the last one's newline dropped
		var lines [][]byte
		for len(lines) < want {
			i := bytes.LastIndexByte(body, '\n')
			if i < 0 {
				if n == size { // the buffer starts at offset 0: a whole line
					lines = append(lines, body)
				}
				break
			}
			lines = append(lines, body[i+1:])
			body = body[:i]
		}
		if len(lines) == want || n == size || n == maxTailScan {
			for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
				lines[i], lines[j] = lines[j], lines[i]
			}
			t.lines = lines
			return t, nil
		}
	}
}

// unwrapPath drops the path an *os.PathError repeats, for errors that
// already name the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
