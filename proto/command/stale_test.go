package command

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates command.pb.go from command.proto, as
// `make proto` does, and fails when the committed file differs.
func TestGeneratedCodeIsFresh(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("protoc not found: `make deps` installs protobuf-compiler")
		}
		t.Skip("protoc not installed (make deps installs it)")
	}
	plugin, err := exec.Command("go", "tool", "-n", "protoc-gen-go").Output()
	if err != nil {
		t.Fatalf("locating protoc-gen-go (a go.mod tool): %v", err)
	}
	// Read the schema here too, so that the test cache sees it change.
	if _, err := os.ReadFile("../command.proto"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command(protoc,
		"--plugin=protoc-gen-go="+strings.TrimSpace(string(plugin)),
		"--go_out="+out, "--go_opt=module=github.com/sozu-go/sozu",
		"-I", "..", "../command.proto")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(filepath.Join(out, "proto", "command", "command.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("command.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatal("proto/command/command.pb.go is stale: run `make proto` and commit the result")
	}
}
