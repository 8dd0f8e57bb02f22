package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
)

// MaxBodySize bounds every request body.
const MaxBodySize = 1 << 20

// OAuth grant and token types.
const (
	GrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

var ginOnce sync.Once

// oauthError is the JSON error body of SPEC §3.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// status maps a core error to its HTTP status and OAuth error code. This is
// the only place where errors become HTTP.
func status(err error) (int, string) {
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "invalid_request"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "invalid_token"
	case errors.Is(err, ErrInvalidClient):
		return http.StatusUnauthorized, "invalid_client"
	case errors.Is(err, ErrUnauthorizedClient):
		return http.StatusBadRequest, "unauthorized_client"
	case errors.Is(err, ErrUnsupportedGrantType):
		return http.StatusBadRequest, "unsupported_grant_type"
	case errors.Is(err, ErrInvalidGrant):
		return http.StatusBadRequest, "invalid_grant"
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "temporarily_unavailable"
	}
	return http.StatusInternalServerError, "server_error"
}

// fail renders err as an OAuth error answer.
func (i *Issuer) fail(c *gin.Context, err error) {
	code, name := status(err)
	desc := err.Error()
	if code >= 500 {
		i.log.Error().Err(err).Str("path", c.Request.URL.Path).Msg("internal error")
		desc = "internal error"
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		c.Header("Retry-After", strconv.Itoa(int(rl.RetryAfter/time.Second)+1))
	}
	switch name {
	case "invalid_client":
		c.Header("WWW-Authenticate", `Basic realm="trunkpass"`)
	case "invalid_token":
		c.Header("WWW-Authenticate", `Bearer realm="trunkpass-admin", error="invalid_token"`)
	}
	c.Header("Cache-Control", "no-store")
	c.Set("error", name)
	c.Set("reason", Reason(err))
	c.AbortWithStatusJSON(code, oauthError{Error: name, Description: desc})
}

func (i *Issuer) newHandler() (http.Handler, error) {
	ginOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	r := gin.New()
	// nil trusts no proxy: the TCP peer is the client.
	if err := r.SetTrustedProxies(i.cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("%w: trusted_proxies: %v", ErrConfig, err)
	}
	r.HandleMethodNotAllowed = true
	r.Use(i.recoverer, i.accessLog)
	r.NoRoute(func(c *gin.Context) { i.fail(c, fmt.Errorf("%w: no such path", ErrNotFound)) })
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "method not allowed"})
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(i.metrics.reg, promhttp.HandlerOpts{})))
	r.GET("/.well-known/jwks.json", i.handleJWKS)
	r.GET("/.well-known/oauth-authorization-server", i.handleMetadata)
	r.OPTIONS("/v1/token", i.cors)
	r.OPTIONS("/oauth2/token", i.cors)
	r.POST("/v1/token", i.cors, i.handleToken)
	r.POST("/oauth2/token", i.cors, i.handleOAuthToken)
	r.POST("/v1/introspect", i.handleIntrospect)
	r.POST("/v1/revoke", i.handleRevoke)

	a := r.Group("/v1/admin", i.adminAuth)
	a.POST("/customers", i.handleCreateCustomer)
	a.GET("/customers", func(c *gin.Context) { c.JSON(http.StatusOK, i.Customers()) })
	a.GET("/customers/:id", i.handleGetCustomer)
	a.PATCH("/customers/:id", i.handleUpdateCustomer)
	a.DELETE("/customers/:id", i.handleDeleteCustomer)
	a.POST("/customers/:id/secrets", i.handleCreateSecret)
	a.GET("/customers/:id/secrets", i.handleListSecrets)
	a.DELETE("/customers/:id/secrets/:sid", i.handleRevokeSecret)
	a.POST("/keys/rotate", i.handleRotate)
	a.GET("/keys", func(c *gin.Context) { c.JSON(http.StatusOK, i.Keys()) })
	a.POST("/edges", i.handleCreateEdge)
	a.GET("/edges", func(c *gin.Context) { c.JSON(http.StatusOK, i.EdgeClients()) })
	a.DELETE("/edges/:id", i.handleDeleteEdge)
	a.GET("/audit", i.handleAudit)
	return r, nil
}

// recoverer turns a panic into a logged 500 without the request's data.
func (i *Issuer) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			i.log.Error().Str("panic", fmt.Sprint(v)).Str("path", c.Request.URL.Path).Msg("handler panic")
			i.fail(c, errors.New("panic"))
		}
	}()
	c.Next()
}

// accessLog logs each request without its body, query or headers.
func (i *Issuer) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	d := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	code := c.Writer.Status()
	i.metrics.latencyFor(route, code).Observe(d.Seconds())
	var ev *zerolog.Event
	switch {
	case code >= 500:
		ev = i.log.Error()
	case code >= 400:
		ev = i.log.Warn()
	default:
		ev = i.log.Info()
	}
	if ev == nil {
		return // level disabled: do not build the fields
	}
	ev = ev.Str("method", c.Request.Method).Str("route", route).Int("status", code).
		Dur("duration", d).Str("remote", c.ClientIP())
	if e, ok := c.Get("error"); ok {
		ev = ev.Interface("error", e).Interface("reason", c.MustGet("reason"))
	}
	ev.Msg("http")
}

// readBody reads at most MaxBodySize bytes of the body.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.ContentLength > MaxBodySize {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrTooLarge, c.Request.ContentLength, MaxBodySize)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, MaxBodySize)
		}
		return nil, invalidRequest("reading body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes body strictly into v: unknown fields and trailing
// data are errors.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidRequest("malformed JSON body: %v", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidRequest("malformed JSON body: data after the object")
	}
	return nil
}

// jsonErr describes a JSON error without echoing the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "cannot decode"
}

func mediaType(c *gin.Context) string {
	ct := c.GetHeader("Content-Type")
	if ct == "application/json" { // the common case, without parameters
		return ct
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt
}

// parseForm parses a form body, refusing repeated parameters (RFC 6749 §3.2).
func parseForm(body []byte) (url.Values, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidRequest("malformed form body")
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, invalidRequest("parameter %q repeated", k)
		}
	}
	return v, nil
}

type tokenBody struct {
	Assertion string          `json:"assertion"`
	Customer  string          `json:"customer"`
	Username  string          `json:"username"`
	Password  string          `json:"password"`
	IDToken   string          `json:"id_token"`
	Sub       string          `json:"sub"`
	Grants    *chain.SIPGrant `json:"grants"`
	TTL       int64           `json:"ttl"`
}

func (i *Issuer) sourceLimit(c *gin.Context) bool {
	if i.limits.cfg.PerSource <= 0 {
		return true // no limit: skip working out the client address
	}
	if err := i.AllowSource(c.ClientIP()); err != nil {
		i.metrics.failures.WithLabelValues(Reason(err)).Inc()
		i.fail(c, err)
		return false
	}
	return true
}

func basicAuth(c *gin.Context) (id, secret string, ok bool, err error) {
	h := c.GetHeader("Authorization")
	if h == "" {
		return "", "", false, nil
	}
	id, secret, ok = c.Request.BasicAuth()
	if !ok {
		if len(h) >= 6 && strings.EqualFold(h[:6], "basic ") {
			return "", "", false, invalidClient("malformed HTTP Basic credentials")
		}
		return "", "", false, nil
	}
	if id == "" {
		return "", "", false, invalidClient("empty client id")
	}
	return id, secret, true, nil
}

func (i *Issuer) handleToken(c *gin.Context) {
	if !i.sourceLimit(c) {
		return
	}
	body, err := readBody(c)
	if err != nil {
		i.fail(c, err)
		return
	}
	var tb tokenBody
	switch mt := mediaType(c); mt {
	case "application/x-www-form-urlencoded":
		f, err := parseForm(body)
		if err != nil {
			i.fail(c, err)
			return
		}
		tb = tokenBody{Assertion: f.Get("assertion"), Customer: f.Get("customer"), Username: f.Get("username"),
			Password: f.Get("password"), IDToken: f.Get("id_token"), Sub: f.Get("sub")}
		if g := f.Get("grants"); g != "" {
			if err := decodeJSON([]byte(g), &tb.Grants); err != nil {
				i.fail(c, err)
				return
			}
		}
		if t := f.Get("ttl"); t != "" {
			if tb.TTL, err = strconv.ParseInt(t, 10, 64); err != nil {
				i.fail(c, invalidRequest("ttl must be whole seconds"))
				return
			}
		}
	case "application/json", "":
		if a, ok := parseAssertionBody(body); ok {
			tb.Assertion = a
		} else if err := decodeJSON(body, &tb); err != nil {
			i.fail(c, err)
			return
		}
	default:
		i.fail(c, invalidRequest("content type %q: send application/json or a form", mt))
		return
	}
	if tb.TTL < 0 || tb.TTL > 86400 {
		i.fail(c, invalidRequest("ttl must be 0 to 86400 seconds"))
		return
	}
	req := &TokenRequest{Assertion: tb.Assertion, Customer: tb.Customer, Username: tb.Username, Password: tb.Password,
		IDToken: tb.IDToken, Subject: tb.Sub, Grants: tb.Grants, TTL: time.Duration(tb.TTL) * time.Second,
		Origin: c.GetHeader("Origin")}
	id, secret, ok, err := basicAuth(c)
	if err != nil {
		i.fail(c, err)
		return
	}
	if ok {
		req.ClientID, req.ClientSecret = id, secret
	}
	i.respondToken(c, req, "")
}

func (i *Issuer) respondToken(c *gin.Context, req *TokenRequest, issuedType string) {
	resp, err := i.Issue(c.Request.Context(), req)
	if err != nil {
		i.fail(c, err)
		return
	}
	resp.IssuedTokenType = issuedType
	// The answer's headers take shared values and a Date formatted once a
	// second: net/http would otherwise canonicalize each name, allocate
	// each value and format the Date for every token.
	h := c.Writer.Header()
	h["Cache-Control"], h["Pragma"], h["Content-Type"], h["Date"] = noStore, noCache, jsonUTF8, httpDate(time.Now())
	c.Writer.WriteHeader(http.StatusOK)
	c.Writer.Write(resp.appendJSON(make([]byte, 0, 512+len(resp.AccessToken))))
}

// Header values shared by every answer that sends them. They are never
// modified: a later Header.Add appends to a copy, since each has no spare
// capacity.
var (
	noStore    = []string{"no-store"}
	noCache    = []string{"no-cache"}
	jsonUTF8   = []string{"application/json; charset=utf-8"}
	varyOrigin = []string{"Origin"}
)

// latestDate is the Date header value of the latest second httpDate saw.
var latestDate atomic.Pointer[dateHeader]

// dateHeader is a Date header value and the second it names.
type dateHeader struct {
	unix  int64
	value []string
}

// httpDate returns the Date header value (RFC 9110 IMF-fixdate) for now,
// formatted once per second and shared.
func httpDate(now time.Time) []string {
	if d := latestDate.Load(); d != nil && d.unix == now.Unix() {
		return d.value
	}
	d := &dateHeader{unix: now.Unix(), value: []string{now.UTC().Format(http.TimeFormat)}}
	latestDate.Store(d)
	return d.value
}

func (i *Issuer) handleOAuthToken(c *gin.Context) {
	if !i.sourceLimit(c) {
		return
	}
	body, err := readBody(c)
	if err != nil {
		i.fail(c, err)
		return
	}
	if mt := mediaType(c); mt != "application/x-www-form-urlencoded" {
		i.fail(c, invalidRequest("content type %q: /oauth2/token takes application/x-www-form-urlencoded", mt))
		return
	}
	f, err := parseForm(body)
	if err != nil {
		i.fail(c, err)
		return
	}
	req := &TokenRequest{Origin: c.GetHeader("Origin")}
	switch gt := f.Get("grant_type"); gt {
	case GrantJWTBearer:
		req.Assertion = f.Get("assertion")
		if req.Assertion == "" {
			i.fail(c, invalidRequest("assertion is required"))
			return
		}
		i.respondToken(c, req, "")
	case GrantTokenExchange:
		if f.Get("subject_token_type") != TokenTypeIDToken {
			i.fail(c, invalidRequest("subject_token_type must be %s", TokenTypeIDToken))
			return
		}
		req.IDToken = f.Get("subject_token")
		req.Customer = f.Get("customer")
		if req.Customer == "" {
			req.Customer = f.Get("client_id")
		}
		if req.IDToken == "" || req.Customer == "" {
			i.fail(c, invalidRequest("subject_token and customer (or client_id) are required"))
			return
		}
		i.respondToken(c, req, TokenTypeAccess)
	case "":
		i.fail(c, invalidRequest("grant_type is required"))
	default:
		i.fail(c, fmt.Errorf("%w: grant_type %q", ErrUnsupportedGrantType, gt))
	}
}

// cors answers preflights and sets CORS headers for origins some customer
// lists; the token request itself checks the origin against its customer.
func (i *Issuer) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	c.Writer.Header()["Vary"] = varyOrigin
	allowed := origin != "" && i.state.Load().origins[origin]
	if allowed {
		c.Header("Access-Control-Allow-Origin", origin)
	}
	if c.Request.Method != http.MethodOptions {
		return
	}
	if !allowed {
		c.AbortWithStatusJSON(http.StatusForbidden, oauthError{Error: "unauthorized_client", Description: "origin not allowed"})
		return
	}
	c.Header("Access-Control-Allow-Methods", "POST, OPTIONS")
	c.Header("Access-Control-Allow-Headers", "Content-Type, Authorization")
	c.Header("Access-Control-Max-Age", "600")
	c.AbortWithStatus(http.StatusNoContent)
}

func (i *Issuer) handleJWKS(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", i.JWKS())
}

// Metadata is the RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionAuthMethods          []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported"`
	SigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

// Metadata returns the issuer's RFC 8414 metadata.
func (i *Issuer) Metadata() Metadata {
	base := strings.TrimSuffix(i.cfg.URL, "/")
	return Metadata{
		Issuer: i.cfg.URL, TokenEndpoint: base + "/oauth2/token", JWKSURI: base + "/.well-known/jwks.json",
		IntrospectionEndpoint: base + "/v1/introspect", RevocationEndpoint: base + "/v1/revoke",
		GrantTypesSupported:               []string{GrantJWTBearer, GrantTokenExchange},
		TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_basic"},
		IntrospectionAuthMethods:          []string{"client_secret_basic"},
		RevocationAuthMethods:             []string{"client_secret_basic"},
		SigningAlgValuesSupported:         chain.AssertionAlgorithms,
	}
}

func (i *Issuer) handleMetadata(c *gin.Context) { c.JSON(http.StatusOK, i.Metadata()) }

func (i *Issuer) tokenForm(c *gin.Context) (url.Values, bool) {
	body, err := readBody(c)
	if err != nil {
		i.fail(c, err)
		return nil, false
	}
	if mt := mediaType(c); mt != "application/x-www-form-urlencoded" {
		i.fail(c, invalidRequest("content type %q: send application/x-www-form-urlencoded", mt))
		return nil, false
	}
	f, err := parseForm(body)
	if err != nil {
		i.fail(c, err)
		return nil, false
	}
	if f.Get("token") == "" {
		i.fail(c, invalidRequest("token is required"))
		return nil, false
	}
	return f, true
}

func (i *Issuer) handleIntrospect(c *gin.Context) {
	id, secret, ok, err := basicAuth(c)
	if err == nil && !ok {
		err = invalidClient("HTTP Basic client authentication required")
	}
	if err != nil {
		i.fail(c, err)
		return
	}
	f, ok := i.tokenForm(c)
	if !ok {
		return
	}
	res, err := i.Introspect(id, secret, f.Get("token"))
	if err != nil {
		i.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, res)
}

func (i *Issuer) handleRevoke(c *gin.Context) {
	var auth RevokeAuth
	if t, ok := bearer(c); ok {
		auth.AdminToken = t
	} else {
		id, secret, ok, err := basicAuth(c)
		if err == nil && !ok {
			err = invalidClient("client authentication required")
		}
		if err != nil {
			i.fail(c, err)
			return
		}
		auth.ClientID, auth.ClientSecret = id, secret
	}
	f, ok := i.tokenForm(c)
	if !ok {
		return
	}
	if err := i.Revoke(c.Request.Context(), auth, f.Get("token")); err != nil {
		i.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// adminAuth requires the admin token and names the actor for the audit log.
func (i *Issuer) adminAuth(c *gin.Context) {
	t, ok := bearer(c)
	if !ok || !i.CheckAdminToken(t) {
		i.fail(c, fmt.Errorf("%w", ErrUnauthorized))
		return
	}
	ctx := WithActor(c.Request.Context(), "admin@"+c.ClientIP())
	c.Request = c.Request.WithContext(ctx)
}

func ctxOf(c *gin.Context) context.Context { return c.Request.Context() }

func (i *Issuer) decodeAdmin(c *gin.Context, v any) bool {
	body, err := readBody(c)
	if err == nil {
		err = decodeJSON(body, v)
	}
	if err != nil {
		i.fail(c, err)
		return false
	}
	return true
}

func (i *Issuer) handleCreateCustomer(c *gin.Context) {
	var in Customer
	if !i.decodeAdmin(c, &in) {
		return
	}
	out, err := i.CreateCustomer(ctxOf(c), in)
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (i *Issuer) handleGetCustomer(c *gin.Context) {
	out, err := i.Customer(c.Param("id"))
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (i *Issuer) handleUpdateCustomer(c *gin.Context) {
	var p CustomerPatch
	if !i.decodeAdmin(c, &p) {
		return
	}
	out, err := i.UpdateCustomer(ctxOf(c), c.Param("id"), p)
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (i *Issuer) handleDeleteCustomer(c *gin.Context) {
	if err := i.DeleteCustomer(ctxOf(c), c.Param("id")); err != nil {
		i.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// FlexTime is a time written as RFC 3339 or as Unix seconds.
type FlexTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *FlexTime) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		t.Time = time.Unix(n, 0).UTC()
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339, str)
	if err != nil {
		if n, err2 := strconv.ParseInt(str, 10, 64); err2 == nil {
			t.Time = time.Unix(n, 0).UTC()
			return nil
		}
		return fmt.Errorf("time %q: want RFC 3339 or Unix seconds", str)
	}
	t.Time = v
	return nil
}

func (i *Issuer) handleCreateSecret(c *gin.Context) {
	var in struct {
		NotBefore FlexTime `json:"not_before"`
		NotAfter  FlexTime `json:"not_after"`
	}
	body, err := readBody(c)
	if err != nil {
		i.fail(c, err)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, &in); err != nil {
			i.fail(c, err)
			return
		}
	}
	out, err := i.CreateSecret(ctxOf(c), c.Param("id"), in.NotBefore.Time, in.NotAfter.Time)
	if err != nil {
		i.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, out)
}

func (i *Issuer) handleListSecrets(c *gin.Context) {
	out, err := i.Secrets(c.Param("id"))
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (i *Issuer) handleRevokeSecret(c *gin.Context) {
	out, err := i.RevokeSecret(ctxOf(c), c.Param("id"), c.Param("sid"))
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (i *Issuer) handleRotate(c *gin.Context) {
	out, err := i.RotateKeys(ctxOf(c))
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (i *Issuer) handleCreateEdge(c *gin.Context) {
	var in struct {
		Name string `json:"name"`
	}
	if !i.decodeAdmin(c, &in) {
		return
	}
	out, err := i.CreateEdgeClient(ctxOf(c), in.Name)
	if err != nil {
		i.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, out)
}

func (i *Issuer) handleDeleteEdge(c *gin.Context) {
	if err := i.DeleteEdgeClient(ctxOf(c), c.Param("id")); err != nil {
		i.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (i *Issuer) handleAudit(c *gin.Context) {
	after, err1 := strconv.ParseUint(c.DefaultQuery("after", "0"), 10, 64)
	limit, err2 := strconv.Atoi(c.DefaultQuery("limit", "100"))
	if err1 != nil || err2 != nil {
		i.fail(c, invalidRequest("after and limit must be numbers"))
		return
	}
	out, err := i.Audit(ctxOf(c), after, limit)
	if err != nil {
		i.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
