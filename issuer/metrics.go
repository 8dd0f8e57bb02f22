package issuer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the issuer's Prometheus metrics, on a private registry.
type metrics struct {
	reg      *prometheus.Registry
	issued   *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	limited  *prometheus.CounterVec
	keys     prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trunkpass_issuer_tokens_issued_total", Help: "Edge tokens issued, by request form.",
		}, []string{"form"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trunkpass_issuer_token_failures_total", Help: "Refused token requests, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trunkpass_issuer_http_request_duration_seconds", Help: "HTTP request latency, by route and status.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route", "code"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trunkpass_issuer_rate_limited_total", Help: "Token requests refused by a rate limit, by scope.",
		}, []string{"scope"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trunkpass_issuer_jwks_keys", Help: "Signing keys published in the JWKS.",
		}),
	}
	m.reg.MustRegister(m.issued, m.failures, m.latency, m.limited, m.keys,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) failure(err error) {
	m.failures.WithLabelValues(Reason(err)).Inc()
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.Scope == "customer" {
		m.limited.WithLabelValues("customer").Inc()
	}
}
