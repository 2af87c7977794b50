package config

import (
	"slices"

	"github.com/sozu-go/sozu/proto/command"
)

// Defaults: upstream Sōzu 2.1.0's values, applied by applyDefaults only.
const (
	defaultCommandSocket        = "sozu.sock" // in the configuration file's directory
	defaultCommandBufferSize    = 1_000_000
	defaultMaxCommandBufferSize = 2_000_000
	defaultMaxConnections       = 10_000
	defaultMinBuffers           = 1
	defaultMaxBuffers           = 1_000
	defaultBufferSize           = 16_393 // 16 384-byte H2 frame + 9-byte header
	defaultLogLevel             = "info"
	defaultLogTarget            = "stdout"
	defaultWorkerCount          = 2
	defaultWorkerTimeout        = 10    // seconds
	defaultWorkerThreads        = 1     // GOMAXPROCS per worker: one event loop, as upstream
	defaultSoftStopDeadline     = 60    // seconds
	defaultCtlCommandTimeout    = 1_000 // milliseconds
	defaultFrontTimeout         = 60    // seconds
	defaultBackTimeout          = 30
	defaultConnectTimeout       = 3
	defaultRequestTimeout       = 10
	defaultZombieCheckInterval  = 1_800
	defaultAcceptQueueTimeout   = 60
	defaultRetryAfter           = 60
	defaultStickyName           = "SOZUBALANCEID"
	defaultSendTLS13Tickets     = 4
	defaultBackendWeight        = 100

	// UDP listeners take the schema defaults, not the global TCP timeouts.
	defaultUDPFrontTimeout      = 30
	defaultUDPBackTimeout       = 30
	defaultUDPMaxRxDatagramSize = 1_500

	defaultHealthInterval           = 10
	defaultHealthTimeout            = 5
	defaultHealthHealthyThreshold   = 3
	defaultHealthUnhealthyThreshold = 3

	minSlabEntriesPerConnection = 2
	maxSlabEntriesPerConnection = 32
	minH2BufferSize             = 16_393
	maxWorkerCount              = 64
	maxWorkerThreads            = 256
)

var (
	defaultTLSVersions = []tlsVersion{tlsVersion(command.TlsVersion_TLS_V1_2), tlsVersion(command.TlsVersion_TLS_V1_3)}
	// defaultCipherList is also upstream's default for cipher_suites.
	defaultCipherList = []string{
		"TLS13_AES_256_GCM_SHA384",
		"TLS13_AES_128_GCM_SHA256",
		"TLS13_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	}
	defaultSignatureAlgorithms = []string{
		"ECDSA+SHA256", "ECDSA+SHA384", "ECDSA+SHA512",
		"RSA+SHA256", "RSA+SHA384", "RSA+SHA512",
		"RSA-PSS+SHA256", "RSA-PSS+SHA384", "RSA-PSS+SHA512",
	}
	defaultGroupsList    = []string{"X25519MLKEM768", "x25519", "P-256", "P-384"}
	defaultALPNProtocols = []string{"h2", "http/1.1"}
)

// applyDefaults fills every value the file left out. It is the only place
// that knows a default; it runs after the scope check (so it only fills keys
// meaningful for each listener's or cluster's protocol) and before
// validation (so defaults are validated like written values).
func applyDefaults(c *rawConfig) {
	set(&c.CommandSocket, defaultCommandSocket)
	set(&c.CommandBufferSize, defaultCommandBufferSize)
	set(&c.MaxCommandBufferSize, defaultMaxCommandBufferSize)
	set(&c.MaxConnections, defaultMaxConnections)
	set(&c.MinBuffers, defaultMinBuffers)
	set(&c.MaxBuffers, defaultMaxBuffers)
	set(&c.BufferSize, defaultBufferSize)
	set(&c.MaxConnectionsPerIP, 0)
	set(&c.RetryAfter, defaultRetryAfter)
	set(&c.AutomaticStateSave, false)
	set(&c.LogLevel, defaultLogLevel)
	set(&c.LogTarget, defaultLogTarget)
	set(&c.LogColored, false)
	set(&c.AccessLogsFormat, accessLogFormat(command.ProtobufAccessLogFormat_Ascii))
	set(&c.AccessLogsColored, *c.LogColored)
	set(&c.AccessLogsQuery, "mask")
	set(&c.WorkerCount, defaultWorkerCount)
	set(&c.WorkerAutomaticRestart, true)
	set(&c.WorkerTimeout, defaultWorkerTimeout)
	set(&c.WorkerThreads, defaultWorkerThreads)
	set(&c.SoftStopDeadline, defaultSoftStopDeadline)
	set(&c.DisableClusterMetrics, false)
	set(&c.HandleProcessAffinity, false)
	set(&c.CtlCommandTimeout, defaultCtlCommandTimeout)
	set(&c.ActivateListeners, true)
	set(&c.FrontTimeout, defaultFrontTimeout)
	set(&c.BackTimeout, defaultBackTimeout)
	set(&c.ConnectTimeout, defaultConnectTimeout)
	set(&c.RequestTimeout, defaultRequestTimeout)
	set(&c.ZombieCheckInterval, defaultZombieCheckInterval)
	set(&c.AcceptQueueTimeout, defaultAcceptQueueTimeout)
	set(&c.EvictOnQueueFull, false)
	if m := c.Metrics; m != nil {
		set(&m.TaggedMetrics, false)
		set(&m.Detail, metricDetail(command.MetricDetail_DETAIL_CLUSTER))
	}

	for _, l := range c.Listeners {
		if l == nil || l.Protocol == nil {
			continue
		}
		p := *l.Protocol
		if p == ProtocolUDP {
			set(&l.FrontTimeout, defaultUDPFrontTimeout)
			set(&l.BackTimeout, defaultUDPBackTimeout)
			set(&l.MaxRxDatagramSize, defaultUDPMaxRxDatagramSize)
			set(&l.MaxFlows, 0)
			continue
		}
		set(&l.ExpectProxy, false)
		set(&l.FrontTimeout, *c.FrontTimeout)
		set(&l.BackTimeout, *c.BackTimeout)
		set(&l.ConnectTimeout, *c.ConnectTimeout)
		if p == ProtocolTCP {
			continue
		}
		set(&l.RequestTimeout, *c.RequestTimeout)
		set(&l.StickyName, defaultStickyName)
		set(&l.ElideXRealIP, false)
		set(&l.SendXRealIP, false)
		if p != ProtocolHTTPS {
			continue
		}
		set(&l.TLSVersions, defaultTLSVersions)
		set(&l.CipherList, defaultCipherList)
		set(&l.CipherSuites, defaultCipherList)
		set(&l.SignatureAlgorithms, defaultSignatureAlgorithms)
		set(&l.GroupsList, defaultGroupsList)
		set(&l.SendTLS13Tickets, defaultSendTLS13Tickets)
		if l.AlpnProtocols == nil || len(*l.AlpnProtocols) == 0 {
			alpn := slices.Clone(defaultALPNProtocols)
			l.AlpnProtocols = &alpn
		}
	}

	for _, cl := range c.Clusters {
		if cl == nil {
			continue
		}
		set(&cl.LoadBalancing, loadBalancing(command.LoadBalancingAlgorithms_ROUND_ROBIN))
		if cl.Protocol != nil && *cl.Protocol == clusterHTTP {
			set(&cl.StickySession, false)
			set(&cl.HTTPSRedirect, false)
			for _, f := range cl.Frontends {
				if f == nil {
					continue
				}
				set(&f.Path, "")
				set(&f.PathType, pathType(command.PathRuleKind_PREFIX))
				set(&f.Position, rulePosition(command.RulePosition_TREE))
			}
		}
		if cl.Protocol != nil && *cl.Protocol == clusterTCP {
			set(&cl.SendProxy, false)
		}
		for _, b := range cl.Backends {
			if b != nil {
				set(&b.Weight, defaultBackendWeight)
			}
		}
		if h := cl.HealthCheck; h != nil {
			set(&h.Interval, defaultHealthInterval)
			set(&h.Timeout, defaultHealthTimeout)
			set(&h.HealthyThreshold, defaultHealthHealthyThreshold)
			set(&h.UnhealthyThreshold, defaultHealthUnhealthyThreshold)
			set(&h.ExpectedStatus, 0)
		}
	}
}

// set points *p at a copy of v unless the file gave a value.
func set[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
