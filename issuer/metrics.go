package issuer

import (
	"errors"
	"strconv"
	"sync"

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

	// Children of the vectors by label values, so that a request does not
	// hash its labels and take the vector's lock again.
	issuedBy  sync.Map // Form → prometheus.Counter
	latencyBy sync.Map // latencyKey → prometheus.Observer
}

type latencyKey struct {
	route string
	code  int
}

// issuedFor returns the issued counter of form.
func (m *metrics) issuedFor(form Form) prometheus.Counter {
	if c, ok := m.issuedBy.Load(form); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.issuedBy.LoadOrStore(form, m.issued.WithLabelValues(string(form)))
	return c.(prometheus.Counter)
}

// latencyFor returns the latency histogram of route and status code.
func (m *metrics) latencyFor(route string, code int) prometheus.Observer {
	k := latencyKey{route, code}
	if o, ok := m.latencyBy.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o, _ := m.latencyBy.LoadOrStore(k, m.latency.WithLabelValues(route, strconv.Itoa(code)))
	return o.(prometheus.Observer)
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
