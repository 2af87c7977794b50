// Package health runs a worker's active health checks: it probes every
// backend of the clusters that have a health_check (HTTP GET for HTTP
// clusters, TCP connect for TCP clusters) or a udp.health (TCP connect or
// a datagram exchange for UDP clusters) and hands the verdicts to
// worker/backends, which takes a failing backend out of rotation.
package health

import (
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// Config is a cluster's health check, as the worker runs it.
type Config struct {
	URI       string        // path of the HTTP probe (HTTP clusters)
	Interval  time.Duration // at most this long between two probes of a backend
	Timeout   time.Duration // a probe not answered within this fails
	Healthy   int           // consecutive successes that bring a down backend back
	Unhealthy int           // consecutive failures that take a backend down
	Expected  int           // HTTP status the probe wants; 0: any 2xx
	TCP       bool          // probe by TCP connect only (the cluster serves TCP frontends)
	H2C       bool          // probe in HTTP/2 with prior knowledge (the cluster's http2 = true)
	// Port, when not 0, is the port a TCP probe connects to instead of
	// the backend's (udp.health tcp_port: a UDP backend's TCP side).
	Port uint16
	// UDP probes by datagram: UDPPayload is sent to the backend, which
	// must answer with any datagram within Timeout (udp.health UDP_PROBE).
	UDP        bool
	UDPPayload []byte
}

// UDPConfigFrom reads the udp.health of a cluster serving UDP frontends
// (mode TCP_PROBE or UDP_PROBE; HEALTH_OFF is never passed): rise and fall
// are the thresholds, probe_interval_seconds and probe_timeout_seconds the
// schedule. fail_open is applied by worker/udp, not here.
func UDPConfigFrom(uh *command.UdpHealthConfig) Config {
	c := Config{
		Interval:  time.Duration(max(uh.GetProbeIntervalSeconds(), 1)) * time.Second,
		Timeout:   time.Duration(max(uh.GetProbeTimeoutSeconds(), 1)) * time.Second,
		Healthy:   int(max(uh.GetRise(), 1)),
		Unhealthy: int(max(uh.GetFall(), 1)),
	}
	switch uh.GetMode() {
	case command.UdpHealthMode_UDP_PROBE:
		c.UDP, c.UDPPayload = true, append([]byte(nil), uh.GetUdpProbePayload()...)
	default:
		c.TCP, c.Port = true, uint16(uh.GetTcpPort())
	}
	return c
}

// ConfigFrom reads a validated health_check (proto/state checks it before
// storing it). tcp is whether the cluster serves TCP frontends.
func ConfigFrom(hc *command.HealthCheckConfig, tcp bool) Config {
	return Config{
		URI:       hc.GetUri(),
		Interval:  time.Duration(max(hc.GetInterval(), 1)) * time.Second,
		Timeout:   time.Duration(max(hc.GetTimeout(), 1)) * time.Second,
		Healthy:   int(max(hc.GetHealthyThreshold(), 1)),
		Unhealthy: int(max(hc.GetUnhealthyThreshold(), 1)),
		Expected:  int(hc.GetExpectedStatus()),
		TCP:       tcp,
	}
}

// State is one backend's health as the checker sees it: the verdict and
// the run of identical probe results that leads to the next one. The zero
// value is a healthy backend (a new backend, or a restarted worker, trusts
// a backend until it fails Unhealthy probes in a row).
type State struct {
	Down      bool
	successes int // consecutive, while Down
	failures  int // consecutive, while up
}

// Observe folds one probe result into s and reports whether the verdict
// changed: after cfg.Unhealthy consecutive failures an up backend goes
// down, after cfg.Healthy consecutive successes a down backend comes back.
// A result of the other kind resets the run.
func (s *State) Observe(ok bool, cfg Config) (changed bool) {
	switch {
	case ok && s.Down:
		s.successes++
		if s.successes >= cfg.Healthy {
			*s = State{}
			return true
		}
	case ok:
		s.failures = 0
	case s.Down:
		s.successes = 0
	default:
		s.failures++
		if s.failures >= cfg.Unhealthy {
			*s = State{Down: true}
			return true
		}
	}
	return false
}

// jitterSpread is the share of the interval taken off at random from each
// delay, so that probes of many backends (and of several workers) spread
// out instead of arriving together.
const jitterSpread = 0.2

// nextDelay is the wait before the next probe of a backend, from the start
// of the previous one: interval × (1 − jitterSpread·r) for r in [0, 1), so
// within (0.8 × interval, interval]. r outside [0, 1) is clamped.
func nextDelay(interval time.Duration, r float64) time.Duration {
	r = min(max(r, 0), 1)
	d := interval - time.Duration(float64(interval)*jitterSpread*r)
	return max(d, 1)
}

// firstDelay is the wait before the first probe of a backend: r × interval,
// so the first probes of a new health check spread over one interval.
func firstDelay(interval time.Duration, r float64) time.Duration {
	r = min(max(r, 0), 1)
	return time.Duration(float64(interval) * r)
}
