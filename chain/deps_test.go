package chain

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestChainImportsOnlyStdlibAndJWT keeps the credential core free of
// dependencies: the standard library and golang-jwt only.
func TestChainImportsOnlyStdlibAndJWT(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "./").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	var seenJWT bool
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		switch {
		case !strings.Contains(first, "."):
			// standard library
		case pkg == "github.com/golang-jwt/jwt/v5":
			seenJWT = true
		case pkg == "github.com/trunkpass/trunkpass/chain":
		default:
			t.Errorf("chain depends on %s", pkg)
		}
	}
	if !seenJWT {
		t.Errorf("go list output does not name golang-jwt; is it the right package?\n%s", out)
	}
}
