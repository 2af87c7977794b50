package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"time"

	"github.com/BurntSushi/toml"
)

// ClientConfig is what a client of the command socket (the CLI verbs that
// talk to the supervisor, `sozu audit verify`) reads from the configuration
// file. LoadClient fills it without reading any other file, so an operator
// who may read config.toml but not the proxy's private keys, certificates or
// answer files can still use the CLI.
type ClientConfig struct {
	Path string // absolute path of the configuration file

	CommandSocket        string // absolute path of the unix command socket
	CommandBufferSize    uint64 // initial channel buffer, bytes
	MaxCommandBufferSize uint64 // largest frame, bytes
	// CtlCommandTimeout is ctl_command_timeout when the file sets it, 0
	// when it does not (the CLI then keeps its own default).
	CtlCommandTimeout time.Duration
	// AuditHMACKeyFile is the key of the audit chain, as Config.Audit's
	// (absolute; "" when there is neither audit_hmac_key_file nor a JSON
	// audit file).
	AuditHMACKeyFile string
	// AuditLogsJSONTarget is the JSON audit file (absolute), or "".
	AuditLogsJSONTarget string
}

// clientKeys are the top-level keys LoadClient reads; every other key is
// skipped unread and unchecked (`sozu config check` checks them).
var clientKeys = []string{
	"command_socket", "command_buffer_size", "max_command_buffer_size",
	"ctl_command_timeout", "audit_logs_json_target", "audit_hmac_key_file",
}

// LoadClient reads the configuration file at path and parses the keys a
// client needs (see ParseClient). It opens no other file.
func LoadClient(path string) (*ClientConfig, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, Errors{&Error{File: path, Msg: "cannot read configuration: " + err.Error(), Err: err}}
	}
	return ParseClient(data, path)
}

// ParseClient decodes data as Parse does and checks the client keys with
// Parse's rules and defaults (clientKeys), ignoring the rest of the file:
// an unknown key, a listener or a cluster Parse would refuse, an unreadable
// certificate do not stop it. A TOML syntax error does, with its position.
// When Parse accepts data, ParseClient gives the same values as Parse. On
// failure the error is an Errors, each problem matching ErrInvalid.
func ParseClient(data []byte, path string) (*ClientConfig, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Errors{&Error{File: path, Msg: fmt.Sprintf("cannot resolve path: %v", err), Err: err}}
	}
	if len(data) > MaxConfigSize {
		return nil, Errors{&Error{File: path, Msg: fmt.Sprintf("the configuration is %d bytes long: the limit is %d MiB", len(data), MaxConfigSize>>20)}}
	}
	pos, limit := scanPositions(string(data))
	if limit != nil {
		return nil, Errors{&Error{File: path, Line: limit.at.line, Col: limit.at.col, Msg: limit.msg}}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, syntaxError(path, err)
	}
	d := &decoder{errs: newErrorList(path, pos)}
	raw := new(rawConfig)
	rv := reflect.ValueOf(raw).Elem()
	fields := tomlFields(rv.Type())
	for _, k := range clientKeys {
		if v, ok := doc[k]; ok {
			d.value(k, v, rv.Field(fields[k])) // a bad value is reported and left at its default
		}
	}
	ctlWritten := raw.CtlCommandTimeout != nil
	applyDefaults(raw)
	b := &builder{errs: d.errs, dir: filepath.Dir(abs), cfg: &Config{Path: abs}, noFiles: true}
	b.commandChannel(raw)
	if raw.AuditLogsJSONTarget != nil {
		b.cfg.AuditLogsJSONTarget = b.auditTarget("audit_logs_json_target", *raw.AuditLogsJSONTarget)
	}
	hmacKey := b.hmacKeyFile(raw)
	if err := d.errs.result(); err != nil {
		return nil, err
	}
	c := &ClientConfig{
		Path:                 abs,
		CommandSocket:        b.cfg.CommandSocket,
		CommandBufferSize:    b.cfg.CommandBufferSize,
		MaxCommandBufferSize: b.cfg.MaxCommandBufferSize,
		AuditHMACKeyFile:     hmacKey,
		AuditLogsJSONTarget:  b.cfg.AuditLogsJSONTarget,
	}
	if ctlWritten {
		c.CtlCommandTimeout = b.cfg.CtlCommandTimeout
	}
	return c, nil
}

// MinMaxCommandBufferSize is the smallest max_command_buffer_size taken
// (upstream sets none, only that it be at least command_buffer_size).
// Every frame on the command socket and the worker channels must fit the
// maximum: below some 64 bytes the supervisor cannot send a worker its
// ServerConfig and does not start; below a few KiB it starts, then cannot
// carry an ordinary certificate with its key and chain to the workers nor
// answer a list verb. 16 KiB holds those; it is the command_buffer_size of
// upstream's configuration example (doc/configure.md).
const MinMaxCommandBufferSize = 16 << 10

const minMaxWhy = "every frame on the command socket and the worker channels must fit it, and a smaller maximum cannot carry a certificate with its key and chain (below some 64 bytes, not even a worker's start)"

// commandChannel checks and copies the keys of the command channel
// (command_socket, the buffer sizes, ctl_command_timeout): the keys both
// Parse and ParseClient read.
func (b *builder) commandChannel(r *rawConfig) {
	c := b.cfg
	c.CommandSocket = b.file("command_socket", *r.CommandSocket)
	if len(c.CommandSocket) > maxSocketPath {
		b.errs.at("command_socket", "socket path %q is %d bytes long; unix sockets allow at most %d",
			c.CommandSocket, len(c.CommandSocket), maxSocketPath)
	}
	c.CommandBufferSize, c.MaxCommandBufferSize = *r.CommandBufferSize, *r.MaxCommandBufferSize
	b.atLeast("command_buffer_size", c.CommandBufferSize, 1)
	// command_buffer_size sizes no buffer here (frame readers grow as
	// bytes arrive): its one effect is upstream's rule that the maximum
	// is not below it, kept so that a configuration loads the same in
	// both. The messages say so rather than name it as a size in force.
	const why = "upstream refuses a maximum below command_buffer_size, and so does this proxy, though command_buffer_size sizes no buffer here"
	if c.MaxCommandBufferSize < MinMaxCommandBufferSize && c.CommandBufferSize <= MinMaxCommandBufferSize {
		b.errs.at("max_command_buffer_size", "must be at least %d bytes: %s", MinMaxCommandBufferSize, minMaxWhy)
	} else if c.MaxCommandBufferSize < c.CommandBufferSize {
		switch {
		case !b.written("max_command_buffer_size"):
			b.errs.at("command_buffer_size", "is larger than max_command_buffer_size (%d by default): %s; leave it out, or raise max_command_buffer_size",
				c.MaxCommandBufferSize, why)
		case b.written("command_buffer_size"):
			b.errs.at("max_command_buffer_size", "must be at least command_buffer_size (%d): %s", c.CommandBufferSize, why)
		default:
			b.errs.at("max_command_buffer_size", "must be at least %d bytes (command_buffer_size's default): %s", c.CommandBufferSize, why)
		}
	}
	c.CtlCommandTimeout = time.Duration(*r.CtlCommandTimeout) * time.Millisecond
	b.atLeast("ctl_command_timeout", *r.CtlCommandTimeout, 1)
}
