package main

import (
	"fmt"
	"path/filepath"

	"github.com/sozu-go/sozu/proto/command"
)

// fReloadFile names the configuration file `sozu reload` asks the
// supervisor to load; without it the supervisor reloads its own.
var fReloadFile = &flagSpec{long: "file", short: "f", kind: kindString, metavar: "PATH",
	help: "configuration file to load, read by the supervisor with your file permissions (default: the file the proxy was started with)"}

// buildReload makes reload_configuration. A path is sent absolute (the
// supervisor's working directory is not the operator's); no path sends "",
// which the supervisor reads as its own configuration file.
func buildReload(v *values) (*command.Request, error) {
	path := v.str("file")
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("--file %s: %w", path, err)
		}
		path = abs
	}
	return &command.Request{RequestType: &command.Request_ReloadConfiguration{ReloadConfiguration: path}}, nil
}
