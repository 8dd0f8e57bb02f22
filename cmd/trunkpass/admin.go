package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/internal/config"
)

func init() { rootCmd.AddCommand(newAdminCommand()) }

// adminClient talks to the provisioning API.
type adminClient struct {
	issuer    string
	tokenFile string
	out       io.Writer
	http      *http.Client
}

// call sends a request with the admin token and prints the JSON answer.
func (a *adminClient) call(method, path string, body any) error {
	token, err := config.Secret("TRUNKPASS_ADMIN_TOKEN", a.tokenFile)
	if err != nil {
		return err
	}
	if token == nil {
		return fmt.Errorf("admin token: set TRUNKPASS_ADMIN_TOKEN or --admin-token-file")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(a.issuer, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(b, &oe) == nil && oe.Error != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, path, res.StatusCode, oe.Error, oe.Description)
		}
		return fmt.Errorf("%s %s: status %d", method, path, res.StatusCode)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(b)
	}
	pretty.WriteByte('\n')
	_, err = a.out.Write(pretty.Bytes())
	return err
}

// readJSONFile reads a JSON object from path ("-" for stdin).
func readJSONFile(cmd *cobra.Command, path string) (map[string]any, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	m := map[string]any{}
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

func newAdminCommand() *cobra.Command {
	a := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Provision customers, secrets, keys and edges through the issuer's API",
		Long: `The provisioning (portal) API from the command line. Every command prints the
issuer's JSON answer. The admin token comes from TRUNKPASS_ADMIN_TOKEN or
--admin-token-file.`,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { a.out = cmd.OutOrStdout() },
	}
	cmd.PersistentFlags().StringVar(&a.issuer, "issuer", envOr("TRUNKPASS_ISSUER", "http://127.0.0.1:8080"), "issuer URL (or TRUNKPASS_ISSUER)")
	cmd.PersistentFlags().StringVar(&a.tokenFile, "admin-token-file", "", "file holding the admin token (or TRUNKPASS_ADMIN_TOKEN)")
	cmd.AddCommand(customersCommand(a), secretsCommand(a), keysCommand(a), edgesCommand(a), auditCommand(a))
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// customerFlags are the fields of a customer settable by flag; --from
// reads the whole JSON object from a file.
type customerFlags struct {
	from, name, domain, maxTTL string
	origins, methods           []string
	rateLimit                  int
}

func (f *customerFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.from, "from", "", `JSON file with the customer object ("-" for stdin); flags override it`)
	cmd.Flags().StringVar(&f.name, "name", "", "display name")
	cmd.Flags().StringVar(&f.domain, "domain", "", "SIP domain of the customer's visitors")
	cmd.Flags().StringSliceVar(&f.origins, "origin", nil, "browser origin allowed to call the issuer (repeatable)")
	cmd.Flags().StringVar(&f.maxTTL, "max-ttl", "", `longest edge-token lifetime ("10m")`)
	cmd.Flags().StringSliceVar(&f.methods, "methods", nil, "SIP methods of the default grant")
	cmd.Flags().IntVar(&f.rateLimit, "rate-limit", 0, "token requests per second for this customer (0 = issuer default)")
}

func (f *customerFlags) body(cmd *cobra.Command) (map[string]any, error) {
	m := map[string]any{}
	if f.from != "" {
		var err error
		if m, err = readJSONFile(cmd, f.from); err != nil {
			return nil, err
		}
	}
	fl := cmd.Flags()
	if fl.Changed("name") {
		m["name"] = f.name
	}
	if fl.Changed("domain") {
		m["domain"] = f.domain
	}
	if fl.Changed("origin") {
		m["origins"] = f.origins
	}
	if fl.Changed("max-ttl") {
		m["max_ttl"] = f.maxTTL
	}
	if fl.Changed("methods") {
		sip, _ := m["sip"].(map[string]any)
		if sip == nil {
			sip = map[string]any{}
		}
		sip["methods"] = f.methods
		m["sip"] = sip
	}
	if fl.Changed("rate-limit") {
		m["rate_limit"] = f.rateLimit
	}
	return m, nil
}

func customersCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "customers", Short: "Create, list, read, change and delete customers"}
	var cf customerFlags
	create := &cobra.Command{
		Use: "create ID", Short: "Create a customer", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := cf.body(cmd)
			if err != nil {
				return err
			}
			m["id"] = args[0]
			return a.call(http.MethodPost, "/v1/admin/customers", m)
		},
	}
	cf.bind(create)
	var uf customerFlags
	update := &cobra.Command{
		Use: "update ID", Short: "Change some fields of a customer", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := uf.body(cmd)
			if err != nil {
				return err
			}
			return a.call(http.MethodPatch, "/v1/admin/customers/"+url.PathEscape(args[0]), m)
		},
	}
	uf.bind(update)
	cmd.AddCommand(create, update,
		&cobra.Command{Use: "list", Short: "List customers", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.call(http.MethodGet, "/v1/admin/customers", nil) }},
		&cobra.Command{Use: "get ID", Short: "Show a customer", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				return a.call(http.MethodGet, "/v1/admin/customers/"+url.PathEscape(args[0]), nil)
			}},
		&cobra.Command{Use: "delete ID", Short: "Delete a customer and its secrets", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				return a.call(http.MethodDelete, "/v1/admin/customers/"+url.PathEscape(args[0]), nil)
			}},
	)
	return cmd
}

func secretsCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Create, list and revoke customer secrets"}
	var notBefore, notAfter string
	create := &cobra.Command{
		Use: "create CUSTOMER", Short: "Create a secret (printed once, never again)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			body := map[string]any{}
			if notBefore != "" {
				body["not_before"] = notBefore
			}
			if notAfter != "" {
				body["not_after"] = notAfter
			}
			return a.call(http.MethodPost, "/v1/admin/customers/"+url.PathEscape(args[0])+"/secrets", body)
		},
	}
	create.Flags().StringVar(&notBefore, "not-before", "", "start of validity, RFC 3339 or Unix seconds (default now)")
	create.Flags().StringVar(&notAfter, "not-after", "", "end of validity, RFC 3339 or Unix seconds (default none)")
	cmd.AddCommand(create,
		&cobra.Command{Use: "list CUSTOMER", Short: "List a customer's secrets (without values)", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				return a.call(http.MethodGet, "/v1/admin/customers/"+url.PathEscape(args[0])+"/secrets", nil)
			}},
		&cobra.Command{Use: "revoke CUSTOMER SECRET_ID", Short: "Revoke a secret now", Args: cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				return a.call(http.MethodDelete, "/v1/admin/customers/"+url.PathEscape(args[0])+"/secrets/"+url.PathEscape(args[1]), nil)
			}},
	)
	return cmd
}

func keysCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Show and rotate the issuer's signing keys"}
	cmd.AddCommand(
		&cobra.Command{Use: "rotate", Short: "Rotate the signing key", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return a.call(http.MethodPost, "/v1/admin/keys/rotate", map[string]any{})
			}},
		&cobra.Command{Use: "list", Short: "List the published signing keys", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.call(http.MethodGet, "/v1/admin/keys", nil) }},
	)
	return cmd
}

func edgesCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "edges", Short: "Introspection clients for edges and SBCs"}
	var name string
	create := &cobra.Command{
		Use: "create", Short: "Create introspection credentials (secret printed once)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.call(http.MethodPost, "/v1/admin/edges", map[string]any{"name": name})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name for the edge")
	cmd.AddCommand(create,
		&cobra.Command{Use: "list", Short: "List introspection clients", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.call(http.MethodGet, "/v1/admin/edges", nil) }},
		&cobra.Command{Use: "delete ID", Short: "Delete an introspection client", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				return a.call(http.MethodDelete, "/v1/admin/edges/"+url.PathEscape(args[0]), nil)
			}},
	)
	return cmd
}

func auditCommand(a *adminClient) *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use: "audit", Short: "Show the audit log: who changed what, when", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.call(http.MethodGet, fmt.Sprintf("/v1/admin/audit?after=%d&limit=%d", after, limit), nil)
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "show entries after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries (up to 1000)")
	return cmd
}
