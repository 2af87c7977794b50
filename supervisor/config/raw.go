package config

// The raw decoded form of the TOML file, with upstream Sōzu's key names.
// A nil pointer means "not written"; defaults are filled in by applyDefaults
// (defaults.go) and nowhere else. These types never leave the package: the
// runtime form is Config.
//
// Keys accepted but without effect in this implementation are marked
// "ignored" (kept so that upstream configurations load). Keys marked
// "extension" are not upstream keys; they set schema fields upstream's
// TOML cannot reach.

type rawConfig struct {
	CommandSocket               *string                `toml:"command_socket"`
	CommandBufferSize           *uint64                `toml:"command_buffer_size"`
	MaxCommandBufferSize        *uint64                `toml:"max_command_buffer_size"`
	MaxConnections              *uint64                `toml:"max_connections"`
	MinBuffers                  *uint64                `toml:"min_buffers"`
	MaxBuffers                  *uint64                `toml:"max_buffers"`
	BufferSize                  *uint64                `toml:"buffer_size"`
	SlabEntriesPerConnection    *uint64                `toml:"slab_entries_per_connection"`     // passed to workers
	BasicAuthMaxCredentialBytes *uint64                `toml:"basic_auth_max_credential_bytes"` // passed to workers
	MaxConnectionsPerIP         *uint64                `toml:"max_connections_per_ip"`
	RetryAfter                  *uint32                `toml:"retry_after"`
	SplicePipeCapacityBytes     *uint64                `toml:"splice_pipe_capacity_bytes"` // capacity of the TCP relays' splice pipes (worker/tcp)
	CommandAllowedUIDs          *[]uint32              `toml:"command_allowed_uids"`
	SavedState                  *string                `toml:"saved_state"`
	AutomaticStateSave          *bool                  `toml:"automatic_state_save"`
	LogLevel                    *string                `toml:"log_level"`
	LogTarget                   *string                `toml:"log_target"`
	LogColored                  *bool                  `toml:"log_colored"`
	AuditLogsTarget             *string                `toml:"audit_logs_target"`
	AuditLogsJSONTarget         *string                `toml:"audit_logs_json_target"`
	AccessLogsTarget            *string                `toml:"access_logs_target"`
	AccessLogsFormat            *accessLogFormat       `toml:"access_logs_format"`
	AccessLogsColored           *bool                  `toml:"access_logs_colored"`
	AccessLogsQuery             *accessLogQuery        `toml:"access_logs_query"` // ours: mask, keep or drop query values
	WorkerCount                 *uint32                `toml:"worker_count"`
	WorkerAutomaticRestart      *bool                  `toml:"worker_automatic_restart"`
	WorkerTimeout               *uint32                `toml:"worker_timeout"`
	SoftStopDeadline            *uint32                `toml:"soft_stop_deadline"`
	Metrics                     *rawMetrics            `toml:"metrics"`
	DisableClusterMetrics       *bool                  `toml:"disable_cluster_metrics"`
	Listeners                   []*rawListener         `toml:"listeners"`
	Clusters                    map[string]*rawCluster `toml:"clusters"`
	HandleProcessAffinity       *bool                  `toml:"handle_process_affinity"` // ignored
	CtlCommandTimeout           *uint64                `toml:"ctl_command_timeout"`     // milliseconds
	PidFilePath                 *string                `toml:"pid_file_path"`
	ActivateListeners           *bool                  `toml:"activate_listeners"`
	FrontTimeout                *uint32                `toml:"front_timeout"`
	BackTimeout                 *uint32                `toml:"back_timeout"`
	ConnectTimeout              *uint32                `toml:"connect_timeout"`
	RequestTimeout              *uint32                `toml:"request_timeout"`
	ZombieCheckInterval         *uint32                `toml:"zombie_check_interval"`
	AcceptQueueTimeout          *uint32                `toml:"accept_queue_timeout"`
	EvictOnQueueFull            *bool                  `toml:"evict_on_queue_full"`

	// Extensions: admission, audit and sandbox (security.go).
	CommandAllowedGIDs  *[]uint32 `toml:"command_allowed_gids"`
	CommandReadonlyUIDs *[]uint32 `toml:"command_readonly_uids"`
	CommandReadonlyGIDs *[]uint32 `toml:"command_readonly_gids"`
	CommandSocketGroup  *string   `toml:"command_socket_group"`
	StateKeyCustodians  *[]uint32 `toml:"state_key_custodian_uids"`
	PeerUserCacheSize   *uint32   `toml:"peer_user_cache_size"`
	PeerUserCacheTTL    *uint32   `toml:"peer_user_cache_ttl"` // seconds
	PeerLookupTimeout   *uint32   `toml:"peer_lookup_timeout"` // milliseconds
	AuditHMACKeyFile    *string   `toml:"audit_hmac_key_file"`
	AuditFailOpen       *bool     `toml:"audit_fail_open"`
	AuditQueries        *bool     `toml:"audit_queries"`
	AuditFsync          *bool     `toml:"audit_fsync"`
	WorkerUser          *string   `toml:"worker_user"`
	WorkerGroup         *string   `toml:"worker_group"`
	WorkerAllowRoot     *bool     `toml:"worker_allow_root"`
	SandboxMode         *string   `toml:"sandbox_mode"`
	TLSSessionTickets   *bool     `toml:"tls_session_tickets"`
	WorkerThreads       *uint32   `toml:"worker_threads"` // GOMAXPROCS of each worker; 0: one per CPU

	// Extensions: command-socket session limits (security.go).
	CommandMaxSessionsPerUID  *uint32 `toml:"command_max_sessions_per_uid"`
	CommandSessionIdleTimeout *uint32 `toml:"command_session_idle_timeout"` // seconds, 0 = none
}

type rawMetrics struct {
	Address       *address      `toml:"address"`
	TaggedMetrics *bool         `toml:"tagged_metrics"`
	Prefix        *string       `toml:"prefix"`
	Detail        *metricDetail `toml:"detail"`
	// PrometheusAddress: ours, not upstream's (docs/metrics.md).
	PrometheusAddress *string `toml:"prometheus_address"`
	// DisableClusterMetrics is the top-level disable_cluster_metrics
	// (upstream's place), accepted here too beside the other metrics keys;
	// mergeMetricsKeys folds it in.
	DisableClusterMetrics *bool `toml:"disable_cluster_metrics"`
}

type rawListener struct {
	Address        *address          `toml:"address"`
	Protocol       *ListenerProtocol `toml:"protocol"`
	PublicAddress  *address          `toml:"public_address"`
	ExpectProxy    *bool             `toml:"expect_proxy" scope:"http,https,tcp"`
	FrontTimeout   *uint32           `toml:"front_timeout"`
	BackTimeout    *uint32           `toml:"back_timeout"`
	ConnectTimeout *uint32           `toml:"connect_timeout" scope:"http,https,tcp"`

	// HTTP and HTTPS only.
	RequestTimeout *uint32           `toml:"request_timeout" scope:"http,https"`
	StickyName     *string           `toml:"sticky_name" scope:"http,https"`
	Answer301      *string           `toml:"answer_301" scope:"http,https"`
	Answer400      *string           `toml:"answer_400" scope:"http,https"`
	Answer401      *string           `toml:"answer_401" scope:"http,https"`
	Answer404      *string           `toml:"answer_404" scope:"http,https"`
	Answer408      *string           `toml:"answer_408" scope:"http,https"`
	Answer413      *string           `toml:"answer_413" scope:"http,https"`
	Answer421      *string           `toml:"answer_421" scope:"http,https"`
	Answer429      *string           `toml:"answer_429" scope:"http,https"`
	Answer502      *string           `toml:"answer_502" scope:"http,https"`
	Answer503      *string           `toml:"answer_503" scope:"http,https"`
	Answer504      *string           `toml:"answer_504" scope:"http,https"`
	Answer507      *string           `toml:"answer_507" scope:"http,https"`
	Answers        map[string]string `toml:"answers" scope:"http,https"`
	SozuIDHeader   *string           `toml:"sozu_id_header" scope:"http,https"`
	ElideXRealIP   *bool             `toml:"elide_x_real_ip" scope:"http,https"`
	SendXRealIP    *bool             `toml:"send_x_real_ip" scope:"http,https"`

	H2MaxRstStreamPerWindow           *uint32 `toml:"h2_max_rst_stream_per_window" scope:"http,https"`
	H2MaxPingPerWindow                *uint32 `toml:"h2_max_ping_per_window" scope:"http,https"`
	H2MaxSettingsPerWindow            *uint32 `toml:"h2_max_settings_per_window" scope:"http,https"`
	H2MaxEmptyDataPerWindow           *uint32 `toml:"h2_max_empty_data_per_window" scope:"http,https"`
	H2MaxWindowUpdateStream0PerWindow *uint32 `toml:"h2_max_window_update_stream0_per_window" scope:"http,https"`
	H2MaxContinuationFrames           *uint32 `toml:"h2_max_continuation_frames" scope:"http,https"`
	H2MaxGlitchCount                  *uint32 `toml:"h2_max_glitch_count" scope:"http,https"`
	H2InitialConnectionWindow         *uint32 `toml:"h2_initial_connection_window" scope:"http,https"`
	H2MaxConcurrentStreams            *uint32 `toml:"h2_max_concurrent_streams" scope:"http,https"`
	H2StreamShrinkRatio               *uint32 `toml:"h2_stream_shrink_ratio" scope:"http,https"`
	H2MaxRstStreamLifetime            *uint64 `toml:"h2_max_rst_stream_lifetime" scope:"http,https"`
	H2MaxRstStreamAbusiveLifetime     *uint64 `toml:"h2_max_rst_stream_abusive_lifetime" scope:"http,https"`
	H2MaxRstStreamEmittedLifetime     *uint64 `toml:"h2_max_rst_stream_emitted_lifetime" scope:"http,https"`
	H2MaxHeaderListSize               *uint32 `toml:"h2_max_header_list_size" scope:"http,https"`
	H2MaxHeaderTableSize              *uint32 `toml:"h2_max_header_table_size" scope:"http,https"`
	H2StreamIdleTimeoutSeconds        *uint32 `toml:"h2_stream_idle_timeout_seconds" scope:"http,https"`
	H2GracefulShutdownDeadlineSeconds *uint32 `toml:"h2_graceful_shutdown_deadline_seconds" scope:"http,https"`
	H2MaxHeaderFields                 *uint32 `toml:"h2_max_header_fields" scope:"http,https"`      // extension
	H2StreamRefusalPercent            *uint32 `toml:"h2_stream_refusal_percent" scope:"http,https"` // upstream 2.3; not built (truth.go)

	// HTTPS only.
	TLSVersions         *[]tlsVersion `toml:"tls_versions" scope:"https"`
	CipherList          *[]string     `toml:"cipher_list" scope:"https"`
	CipherSuites        *[]string     `toml:"cipher_suites" scope:"https"`
	SignatureAlgorithms *[]string     `toml:"signature_algorithms" scope:"https"` // extension
	GroupsList          *[]string     `toml:"groups_list" scope:"https"`
	Certificate         *string       `toml:"certificate" scope:"https"`
	CertificateChain    *string       `toml:"certificate_chain" scope:"https"`
	Key                 *string       `toml:"key" scope:"https"`
	SendTLS13Tickets    *uint64       `toml:"send_tls13_tickets" scope:"https"`
	AlpnProtocols       *[]string     `toml:"alpn_protocols" scope:"https"`
	StrictSNIBinding    *bool         `toml:"strict_sni_binding" scope:"https"`
	DisableHTTP11       *bool         `toml:"disable_http11" scope:"https"`
	HSTS                *rawHSTS      `toml:"hsts" scope:"https"` // extension

	// UDP only (extension: upstream's TOML has no UDP listeners).
	MaxRxDatagramSize *uint32 `toml:"max_rx_datagram_size" scope:"udp"`
	MaxFlows          *uint32 `toml:"max_flows" scope:"udp"`
}

// rawHSTS is an extension table on HTTPS listeners and frontends; its keys
// are the HstsConfig field names.
type rawHSTS struct {
	Enabled             *bool   `toml:"enabled"`
	MaxAge              *uint32 `toml:"max_age"`
	IncludeSubdomains   *bool   `toml:"include_subdomains"`
	Preload             *bool   `toml:"preload"`
	ForceReplaceBackend *bool   `toml:"force_replace_backend"`
}

type rawCluster struct {
	Protocol            *clusterProtocol  `toml:"protocol"`
	Frontends           []*rawFrontend    `toml:"frontends"`
	Backends            []*rawBackend     `toml:"backends"`
	LoadBalancing       *loadBalancing    `toml:"load_balancing"`
	LoadMetric          *loadMetric       `toml:"load_metric"`
	MaxConnectionsPerIP *uint64           `toml:"max_connections_per_ip"`
	RetryAfter          *uint32           `toml:"retry_after"`
	HealthCheck         *rawHealthCheck   `toml:"health_check" scope:"http,tcp"`
	Answers             map[string]string `toml:"answers" scope:"http"`

	// HTTP only.
	StickySession     *bool     `toml:"sticky_session" scope:"http"`
	HTTPSRedirect     *bool     `toml:"https_redirect" scope:"http"`
	HTTPSRedirectPort *uint32   `toml:"https_redirect_port" scope:"http"`
	Answer503         *string   `toml:"answer_503" scope:"http"`
	HTTP2             *bool     `toml:"http2" scope:"http"`
	AuthorizedHashes  *[]string `toml:"authorized_hashes" scope:"http"`
	WWWAuthenticate   *string   `toml:"www_authenticate" scope:"http"`

	// TCP only.
	SendProxy *bool `toml:"send_proxy" scope:"tcp"`

	// Clusters with a frontend on a UDP listener (upstream: a tcp cluster;
	// here a udp cluster too).
	UDP *rawUDP `toml:"udp" scope:"tcp,udp"`
}

// rawUDP is a cluster's [clusters.<id>.udp] table; its keys are the
// UdpClusterConfig field names.
type rawUDP struct {
	AffinityKey                *udpAffinity  `toml:"affinity_key"`
	Responses                  *uint32       `toml:"responses"`
	Requests                   *uint32       `toml:"requests"`
	SendProxyProtocol          *bool         `toml:"send_proxy_protocol"`
	ProxyProtocolEveryDatagram *bool         `toml:"proxy_protocol_every_datagram"`
	Health                     *rawUDPHealth `toml:"health"`
}

// rawUDPHealth is [clusters.<id>.udp.health]; its keys are the
// UdpHealthConfig field names.
type rawUDPHealth struct {
	Mode                 *udpHealthMode `toml:"mode"`
	TCPPort              *uint32        `toml:"tcp_port"`
	Rise                 *uint32        `toml:"rise"`
	Fall                 *uint32        `toml:"fall"`
	FailOpen             *bool          `toml:"fail_open"`
	UDPProbePayload      *string        `toml:"udp_probe_payload"`
	ProbeIntervalSeconds *uint32        `toml:"probe_interval_seconds"`
	ProbeTimeoutSeconds  *uint32        `toml:"probe_timeout_seconds"`
}

type rawFrontend struct {
	Address *address          `toml:"address"`
	Tags    map[string]string `toml:"tags"`

	// HTTP clusters only.
	Hostname         *string         `toml:"hostname" scope:"http"`
	Path             *string         `toml:"path" scope:"http"`
	PathType         *pathType       `toml:"path_type" scope:"http"`
	Method           *string         `toml:"method" scope:"http"`
	Position         *rulePosition   `toml:"position" scope:"http"`
	Certificate      *string         `toml:"certificate" scope:"http"`
	Key              *string         `toml:"key" scope:"http"`
	CertificateChain *string         `toml:"certificate_chain" scope:"http"`
	TLSVersions      *[]tlsVersion   `toml:"tls_versions" scope:"http"`
	Redirect         *redirectPolicy `toml:"redirect" scope:"http"`
	RedirectScheme   *redirectScheme `toml:"redirect_scheme" scope:"http"`
	RedirectTemplate *string         `toml:"redirect_template" scope:"http"`
	RewriteHost      *string         `toml:"rewrite_host" scope:"http"`
	RewritePath      *string         `toml:"rewrite_path" scope:"http"`
	RewritePort      *uint32         `toml:"rewrite_port" scope:"http"`
	RequiredAuth     *bool           `toml:"required_auth" scope:"http"`
	Headers          []*rawHeader    `toml:"headers" scope:"http"`
	HSTS             *rawHSTS        `toml:"hsts" scope:"http"` // extension
}

type rawHeader struct {
	Position *headerPosition `toml:"position"`
	Key      *string         `toml:"key"`
	Value    *string         `toml:"value"`
}

type rawBackend struct {
	Address   *address `toml:"address"`
	BackendID *string  `toml:"backend_id"`
	Weight    *uint8   `toml:"weight"`
	StickyID  *string  `toml:"sticky_id"`
	Backup    *bool    `toml:"backup"`
}

type rawHealthCheck struct {
	URI                *string `toml:"uri"`
	Interval           *uint32 `toml:"interval"`
	Timeout            *uint32 `toml:"timeout"`
	HealthyThreshold   *uint32 `toml:"healthy_threshold"`
	UnhealthyThreshold *uint32 `toml:"unhealthy_threshold"`
	ExpectedStatus     *uint32 `toml:"expected_status"`
}
