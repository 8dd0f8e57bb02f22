package issuer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trunkpass/trunkpass/chain"
)

// TestLogsHoldNoSecrets runs token requests that succeed and fail, the
// admin API and introspection, then reads every log line: requests are
// logged, secrets and tokens are not. (newEnv's cleanup makes the same
// check for every test.)
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	tok := e.assertion(s, "alice", nil)
	tr := e.token(map[string]any{"assertion": tok})
	e.postJSON("/v1/token", map[string]any{"assertion": tok}, nil)                   // replay
	e.postJSON("/v1/token", map[string]any{"sub": "alice"}, basic(s.ID, "guess-me")) // wrong secret
	e.saw("guess-me")
	e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", func(c *chain.AssertionClaims) { c.Audience = []string{"x"} })}, nil)
	e.do(http.MethodGet, "/v1/admin/customers", nil, map[string]string{"Authorization": "Bearer wrong-admin-token-attempt"})
	e.saw("wrong-admin-token-attempt")
	e.do(http.MethodPost, "/v1/introspect?token="+tr.AccessToken, nil, admin())
	e.iss.Close()
	logs := e.logs.String()
	if !strings.Contains(logs, `"route":"/v1/token"`) || !strings.Contains(logs, `"reason":"replay"`) {
		t.Errorf("requests are not logged:\n%s", logs)
	}
	e.checkLogs(t)
}
