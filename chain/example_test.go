package chain_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/trunkpass/trunkpass/chain"
)

func ExampleMintEphemeral() {
	expiry := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	username, password, err := chain.MintEphemeral([]byte("s3cret"), "alice", expiry, chain.EphemeralFormat{})
	if err != nil {
		panic(err)
	}
	fmt.Println(username)
	fmt.Println(password)

	v := &chain.EphemeralVerifier{
		Secrets: [][]byte{[]byte("s3cret")},
		Now:     func() time.Time { return expiry.Add(-time.Hour) },
	}
	cred, err := v.Check(username, password)
	fmt.Println(cred.User, cred.Expiry.UTC().Format(time.RFC3339), err)
	// Output:
	// 1767225600:alice
	// +CKIbET1K2zFrSOk2S33FcZCpuI=
	// alice 2026-01-01T00:00:00Z <nil>
}

func ExampleNarrow() {
	policy := chain.SIPGrant{
		AOR:     "sip:alice@acme.example",
		Methods: []string{"REGISTER", "INVITE", "MESSAGE"},
		Dial:    &chain.DialRules{Allow: []string{"+44*", "sip:*@acme.example"}, Deny: []string{"+449*"}},
		Headers: map[string]string{"X-Customer-Tier": "gold"},
	}
	// The customer asks for less: calls only, UK London numbers only, from
	// one network. It also tries to widen (SUBSCRIBE, a header): ignored.
	req := &chain.SIPGrant{
		Methods: []string{"INVITE", "SUBSCRIBE"},
		Dial:    &chain.DialRules{Allow: []string{"+4420*"}},
		CIDR:    []string{"203.0.113.0/24"},
		Headers: map[string]string{"X-Customer-Tier": "platinum"},
	}
	grant, err := chain.Narrow(policy, req)
	if err != nil {
		panic(err)
	}
	out, _ := json.Marshal(grant)
	fmt.Println(string(out))
	fmt.Println(grant.AllowsDestination("tel:+44-20-7946-0000"), grant.AllowsDestination("sip:bob@acme.example"))
	// Output:
	// {"aor":"sip:alice@acme.example","methods":["INVITE"],"dial":{"allow":["+4420*"],"deny":["+449*"]},"cidr":["203.0.113.0/24"],"headers":{"X-Customer-Tier":"gold"}}
	// true false
}
