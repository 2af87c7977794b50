package supervisor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// queryMetrics answers query_metrics: with list, the metric names; else
// every worker's metrics, merged (proxy level summed, clusters and
// backends merged, sketches merged before their percentiles are read)
// with the query's options applied, and each worker's own when asked.
// A worker that does not answer fails the query, naming it.
func (s *Supervisor) queryMetrics(c *session, req *command.Request) bool {
	opt := req.GetQueryMetrics()
	if opt.GetList() {
		return c.ok("Successfully listed available metrics", &command.ResponseContent{ContentType: &command.ResponseContent_AvailableMetrics{AvailableMetrics: pm.Available()}})
	}
	am, err := s.gatherMetrics(c, req)
	if err != nil {
		return c.fail(err.Error())
	}
	return c.ok("Successfully queried metrics", &command.ResponseContent{ContentType: &command.ResponseContent_Metrics{Metrics: am}})
}

// gatherMetrics fans req (a query_metrics) out and merges the answers.
// c may be nil (no progress answer is sent then).
func (s *Supervisor) gatherMetrics(c *session, req *command.Request) (*command.AggregatedMetrics, error) {
	var calls []*call
	s.do(func(a *actor) { calls = a.fanout(req) })
	if c != nil {
		c.processing("Querying metrics...")
	}
	answers, failed := metricsAnswers(s.gather(c, calls, s.cfg.WorkerTimeout))
	agg := pm.NewAggregator(req.GetQueryMetrics())
	if err := metricsFailed(addAnswers(agg, answers, failed)); err != nil {
		return nil, err
	}
	return agg.Result(s.mainMetrics()), nil
}

// metricsAnswers sorts the outcomes of a metrics fan-out: the workers'
// answers by worker id, and what failed ("id: why").
func metricsAnswers(outs []outcome) (map[uint32]*command.WorkerMetrics, []string) {
	answers := map[uint32]*command.WorkerMetrics{}
	var failed []string
	for _, o := range outs {
		switch {
		case o.ok():
			answers[o.worker] = o.resp.GetContent().GetWorkerMetrics()
		case o.resp != nil:
			failed = append(failed, fmt.Sprintf("%d: %s", o.worker, o.resp.GetMessage()))
		default:
			failed = append(failed, fmt.Sprintf("%d: worker %d %s", o.worker, o.worker, o.err))
		}
	}
	return answers, failed
}

// addAnswers adds answers to agg in worker id order and returns failed
// with the answers agg could not take.
func addAnswers(agg *pm.Aggregator, answers map[uint32]*command.WorkerMetrics, failed []string) []string {
	for _, id := range slices.Sorted(maps.Keys(answers)) {
		if err := agg.Add(workerKey(id), answers[id]); err != nil {
			failed = append(failed, fmt.Sprintf("%d: worker %d sent unusable metrics: %v", id, id, err))
		}
	}
	return failed
}

// metricsFailed is the error of a metrics query that failed on the
// workers failed names, nil when none.
func metricsFailed(failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("metrics query failed on some workers: %s", strings.Join(failed, ", "))
}

// mainMetrics is the supervisor's own: the size of the configuration,
// its exports and its log targets' drops. Counters run from the last
// configure_metrics CLEAR (mainCounters then).
func (s *Supervisor) mainMetrics() map[string]*command.FilteredMetrics {
	var out map[string]*command.FilteredMetrics
	s.do(func(a *actor) { out = a.mainMetrics() })
	return out
}

// mainMetrics is Supervisor.mainMetrics in the actor. Actor only.
func (a *actor) mainMetrics() map[string]*command.FilteredMetrics {
	clusters, backends, frontends := a.state.Sizes()
	g := func(n int) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: uint64(n)}}
	}
	out := map[string]*command.FilteredMetrics{
		pm.ConfigurationClusters:  g(clusters),
		pm.ConfigurationBackends:  g(backends),
		pm.ConfigurationFrontends: g(frontends),
		pm.Workers:                g(len(a.workers)),
	}
	for name, n := range a.mainCounters() {
		out[name] = &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: max(n-a.mainCleared[name], 0)}}
	}
	return out
}

// mainCounters reads the supervisor's own counters, since it started.
func (s *Supervisor) mainCounters() map[string]int64 {
	return map[string]int64{
		pm.StatsdSent:     s.exports.statsdSent.Load(),
		pm.StatsdErrors:   s.exports.statsdErrors.Load(),
		pm.Scrapes:        s.exports.scrapes.Load(),
		pm.LogTargetDrops: int64(s.LogDrops()),
	}
}
