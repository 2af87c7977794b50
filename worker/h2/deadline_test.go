package h2

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestStreamDeadlines checks that a stream's Read and Write honour their
// deadlines like a net.Conn's: a Read waiting for body bytes that never
// come and a Write blocked on a peer that grants no window both fail with
// os.ErrDeadlineExceeded once their deadline passes, and a deadline in
// the past set from another goroutine wakes a blocked Read at once.
func TestStreamDeadlines(t *testing.T) {
	type result struct {
		err     error
		elapsed time.Duration
	}
	for _, tt := range []struct {
		name string
		run  func(s *Stream) error
		min  time.Duration
	}{
		{"read deadline", func(s *Stream) error {
			s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := s.Read(make([]byte, 10))
			return err
		}, 100 * time.Millisecond},
		{"read interrupted by a past deadline", func(s *Stream) error {
			reading := make(chan struct{})
			go func() {
				<-reading // the Read below is blocked, or finds the deadline past: both must fail
				s.SetReadDeadline(time.Unix(1, 0))
			}()
			close(reading)
			_, err := s.Read(make([]byte, 10))
			return err
		}, 0},
		{"write deadline", func(s *Stream) error {
			s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := s.Write(make([]byte, 4*outMax))
			return err
		}, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan result, 1)
			h := HandlerFunc(func(s *Stream) {
				t0 := time.Now()
				err := tt.run(s)
				done <- result{err, time.Since(t0)}
			})
			ts := startServer(t, Limits{}, h, nil, nil)
			// No window for the server's DATA: its Write blocks once its
			// buffer is full.
			rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			rc.get(1, false) // a body announced, never sent
			select {
			case r := <-done:
				if !errors.Is(r.err, os.ErrDeadlineExceeded) {
					t.Fatalf("error %v, want os.ErrDeadlineExceeded", r.err)
				}
				if r.elapsed < tt.min {
					t.Fatalf("failed after %v, before its deadline (%v)", r.elapsed, tt.min)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still blocked 5 s after the deadline")
			}
		})
	}
}
