package admission

// verbRoles is the one table of which role each verb needs, keyed by the
// field name of the verb in the Request oneof of command.proto (what
// command.VerbKey returns). A verb missing here needs Admin (see Required);
// a test fails when a Request field has no entry, and docs/roles.md is
// generated from this table.
var verbRoles = map[string]Role{
	// Read-only: status, queries, lists, metrics, events.
	"list_workers":                      ReadOnly,
	"list_frontends":                    ReadOnly,
	"list_listeners":                    ReadOnly,
	"status":                            ReadOnly,
	"query_cluster_by_id":               ReadOnly,
	"query_clusters_by_domain":          ReadOnly,
	"query_clusters_hashes":             ReadOnly,
	"query_metrics":                     ReadOnly,
	"query_certificates_from_the_state": ReadOnly,
	"query_certificates_from_workers":   ReadOnly,
	"count_requests":                    ReadOnly,
	"query_max_connections_per_ip":      ReadOnly,
	"query_health_checks":               ReadOnly,
	"subscribe_events":                  ReadOnly,

	// Admin: everything that changes the proxy, its files or its processes.
	"save_state":                 Admin, // writes a file the client names
	"load_state":                 Admin,
	"launch_worker":              Admin,
	"upgrade_main":               Admin,
	"audit_reopen":               Admin,
	"upgrade_worker":             Admin,
	"reload_configuration":       Admin,
	"add_cluster":                Admin,
	"remove_cluster":             Admin,
	"add_http_frontend":          Admin,
	"remove_http_frontend":       Admin,
	"add_https_frontend":         Admin,
	"remove_https_frontend":      Admin,
	"add_certificate":            Admin,
	"replace_certificate":        Admin,
	"remove_certificate":         Admin,
	"add_tcp_frontend":           Admin,
	"remove_tcp_frontend":        Admin,
	"add_backend":                Admin,
	"remove_backend":             Admin,
	"add_http_listener":          Admin,
	"add_https_listener":         Admin,
	"add_tcp_listener":           Admin,
	"remove_listener":            Admin,
	"activate_listener":          Admin,
	"deactivate_listener":        Admin,
	"soft_stop":                  Admin,
	"hard_stop":                  Admin,
	"configure_metrics":          Admin,
	"Logging":                    Admin, // sets the log level; capitalised as in command.proto
	"return_listen_sockets":      Admin,
	"update_http_listener":       Admin,
	"update_https_listener":      Admin,
	"update_tcp_listener":        Admin,
	"set_max_connections_per_ip": Admin,
	"set_health_check":           Admin,
	"remove_health_check":        Admin,
	"set_metric_detail":          Admin,
	"add_udp_listener":           Admin,
	"update_udp_listener":        Admin,
	"add_udp_frontend":           Admin,
	"remove_udp_frontend":        Admin,
}

// Required returns the role verb needs: its entry in the verb table, or
// Admin for a verb the table does not know (including "", no verb), so a
// verb added to command.proto is admin-only until classified.
func Required(verb string) Role {
	if r, ok := verbRoles[verb]; ok {
		return r
	}
	return Admin
}
