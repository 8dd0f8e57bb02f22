package testpeer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// NodeTimeout bounds one RunNode call.
var NodeTimeout = 60 * time.Second

// RunNode runs `node script args...` with the repository root as working
// directory (so require/import find node_modules), the current
// environment plus env, bounded by NodeTimeout, and returns its combined
// standard output and error. A relative script is taken from the
// repository root; NODE_PATH points at the repository's node_modules so
// that require() also works from scripts elsewhere (ES module imports
// resolve from the script's own directory). script may be "-e" with the
// code as the first arg. The test is skipped (failed under CI=true) when node
// or node_modules is missing.
func RunNode(t testing.TB, script string, env map[string]string, args ...string) (output string, err error) {
	t.Helper()
	node := RequireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), NodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = MustRepoRoot(t)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(cmd.Dir, "node_modules"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out SyncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("node %s did not finish within %s: %w", script, NodeTimeout, errors.Join(ctx.Err(), err))
	}
	return out.String(), err
}
