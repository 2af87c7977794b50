package metrics

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// RelativeAccuracy is the sketches' guarantee: a reported quantile is
// within 1 % of the true sample value at that rank.
const RelativeAccuracy = 0.01

// maxBins bounds the buckets a histogram decoded from a worker may carry:
// a 1 % sketch spans 1 ns to an hour in about 1 100 bins.
const maxBins = 4096

var sketchMapping = func() mapping.IndexMapping {
	m, err := mapping.NewCubicallyInterpolatedMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // a constant accuracy in (0, 1)
	}
	return m
}()

// Sketch is a streaming estimator of a distribution of durations: a
// DDSketch (relative accuracy RelativeAccuracy, dense stores), mergeable
// across workers without loss. It is safe for concurrent use: Add holds a
// mutex for one bin increment and allocates only when a value falls
// outside the range of bins seen so far. Durations are kept in
// nanoseconds; Percentiles reports microseconds.
type Sketch struct {
	mu  sync.Mutex
	dd  *ddsketch.DDSketch
	sum uint64 // exact, ns
}

// NewSketch returns an empty sketch.
func NewSketch() *Sketch {
	return &Sketch{dd: ddsketch.NewDDSketch(sketchMapping, store.NewDenseStore(), store.NewDenseStore())}
}

// Add records one duration; a negative one counts as zero.
func (s *Sketch) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	s.dd.Add(float64(d)) // an error is impossible: d is in [0, 2^63) ns, far below the mapping's maximum
	s.sum += uint64(d)
	s.mu.Unlock()
}

// Clear empties the sketch.
func (s *Sketch) Clear() {
	s.mu.Lock()
	s.dd.Clear()
	s.sum = 0
	s.mu.Unlock()
}

// Count returns the number of durations recorded.
func (s *Sketch) Count() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(s.dd.GetCount())
}

// Histogram encodes the sketch for the worker channel: one bucket per
// non-empty bin, le being the bin's representative value in nanoseconds
// (not an upper bound: these buckets are for Merge, not for display), sum
// the exact sum in nanoseconds.
func (s *Sketch) Histogram() *command.FilteredHistogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &command.FilteredHistogram{Sum: proto.Uint64(s.sum), Count: proto.Uint64(uint64(s.dd.GetCount()))}
	s.dd.ForEach(func(value, count float64) bool {
		h.Buckets = append(h.Buckets, &command.Bucket{Count: proto.Uint64(uint64(count)), Le: proto.Uint64(uint64(math.Round(value)))})
		return false
	})
	return h
}

// Merge adds a histogram made by Histogram (by another worker's sketch)
// to s. It refuses one with more than maxBins buckets, or whose bucket
// counts do not add up to its count.
func (s *Sketch) Merge(h *command.FilteredHistogram) error {
	if len(h.GetBuckets()) > maxBins {
		return fmt.Errorf("histogram with %d buckets, more than %d", len(h.GetBuckets()), maxBins)
	}
	var n uint64
	for _, b := range h.GetBuckets() {
		n += b.GetCount()
	}
	if n != h.GetCount() {
		return fmt.Errorf("histogram buckets count %d samples, its count says %d", n, h.GetCount())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range h.GetBuckets() {
		if b.GetCount() == 0 {
			continue
		}
		if err := s.dd.AddWithCount(float64(b.GetLe()), float64(b.GetCount())); err != nil {
			return fmt.Errorf("histogram bucket %d ns: %w", b.GetLe(), err)
		}
	}
	s.sum += h.GetSum()
	return nil
}

// Quantiles are the ranks Percentiles reports, in its field order.
var Quantiles = []float64{0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1}

// Percentiles returns the sketch's percentiles and sum in microseconds
// (upstream reports milliseconds: too coarse for a proxy on a LAN).
func (s *Sketch) Percentiles() *command.Percentiles {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &command.Percentiles{Samples: proto.Uint64(uint64(s.dd.GetCount())), Sum: proto.Uint64(s.sum / 1000)}
	v := make([]uint64, len(Quantiles))
	if !s.dd.IsEmpty() {
		qs, err := s.dd.GetValuesAtQuantiles(Quantiles)
		if err == nil {
			for i, q := range qs {
				v[i] = uint64(math.Round(q / 1000))
			}
		}
	}
	p.P_50, p.P_90, p.P_99, p.P_99_9, p.P_99_99, p.P_99_999, p.P_100 = &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]
	return p
}
