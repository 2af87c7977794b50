//go:build !race

// The race detector makes sync.Pool drop items at random: allocation
// counts are only meaningful without it.

package accesslog

import (
	"testing"

	"github.com/sozu-go/sozu/proto/logframe"
)

func TestLogDoesNotAllocate(t *testing.T) {
	w, sup := packetPair(t)
	s := NewShipper(w, 64, 0, "w") // at most 64 buffers in flight: the pool serves the rest
	go s.Run()
	defer s.Close()
	go func() {
		buf := make([]byte, logframe.MaxPacket)
		for {
			if _, err := sup.Read(buf); err != nil {
				return
			}
		}
	}()
	l := &Logger{Enc: Encoder{Format: JSON}, Ship: s}
	r := httpRecord()
	for range 10000 {
		l.Log(r) // warm the pool
	}
	if n := testing.AllocsPerRun(1000, func() { l.Log(r) }); n > 0.05 {
		t.Errorf("Log: %v allocations per record", n)
	}
	var nilLogger *Logger
	if n := testing.AllocsPerRun(100, func() { nilLogger.Log(r) }); n != 0 {
		t.Errorf("nil Logger: %v allocations", n)
	}
}
