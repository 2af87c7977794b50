package audit

import (
	"crypto/rand"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDSource makes the session and request ULIDs of records: monotonic
// (strictly increasing, also within one millisecond), safe for concurrent
// use. Inject one with a fixed clock and entropy in tests.
type IDSource struct {
	mu      sync.Mutex
	now     func() time.Time
	entropy *ulid.MonotonicEntropy
}

// NewIDSource returns a source reading time from now and randomness from
// entropy; nil means time.Now and crypto/rand.
func NewIDSource(now func() time.Time, entropy io.Reader) *IDSource {
	if now == nil {
		now = time.Now
	}
	if entropy == nil {
		entropy = rand.Reader
	}
	return &IDSource{now: now, entropy: ulid.Monotonic(entropy, 0)}
}

// New returns a new ULID in its 26-character form. It panics only when the
// entropy source fails or 2^80 ULIDs were made within one millisecond.
func (s *IDSource) New() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(s.now()), s.entropy).String()
}

// ValidULID reports whether s is a ULID as records carry them.
func ValidULID(s string) bool { return ulidPattern.MatchString(s) }
