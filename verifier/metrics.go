package verifier

import "github.com/prometheus/client_golang/prometheus"

// metrics are the edge's Prometheus collectors.
type metrics struct {
	auth          *prometheus.CounterVec // authenticator, result, reason
	registrations prometheus.GaugeFunc
	registers     *prometheus.CounterVec // result
	calls         *prometheus.CounterVec // direction
	requests      *prometheus.CounterVec // method
	limited       prometheus.Counter
	jwksFetches   *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer, bindings func() float64) (*metrics, error) {
	m := &metrics{
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "auth_total",
			Help: "Authentication outcomes by authenticator, result (ok, challenge, invalid, stale, forbidden, unavailable) and reason.",
		}, []string{"authenticator", "result", "reason"}),
		registrations: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "registrations",
			Help: "Bindings in the location table.",
		}, bindings),
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "register_total",
			Help: "REGISTER requests accepted, by result (registered, unregistered, query).",
		}, []string{"result"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "calls_proxied_total",
			Help: "Out-of-dialog INVITEs proxied, by direction (to_trunk, to_visitor).",
		}, []string{"direction"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "requests_total",
			Help: "SIP requests received, by method.",
		}, []string{"method"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "rate_limited_total",
			Help: "Requests refused because their source failed authentication too often.",
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trunkpass", Subsystem: "edge", Name: "jwks_fetches_total",
			Help: "JWKS fetches from the issuer, by result (ok, error).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.auth, m.registrations, m.registers, m.calls, m.requests, m.limited, m.jwksFetches} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
