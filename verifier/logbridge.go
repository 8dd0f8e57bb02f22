package verifier

import (
	"context"
	"log/slog"
	"strings"

	"github.com/rs/zerolog"
)

// slogBridge hands sipgo's slog records to zerolog. Records below Warn
// are dropped (sipgo's debug logs may quote whole messages), and any
// string that looks like it carries credentials is replaced.
type slogBridge struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func newSlogLogger(log zerolog.Logger) *slog.Logger {
	return slog.New(&slogBridge{log: log.With().Str("component", "sipgo").Logger()})
}

func (h *slogBridge) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *slogBridge) Handle(_ context.Context, r slog.Record) error {
	var ev *zerolog.Event
	switch {
	case r.Level >= slog.LevelError:
		ev = h.log.Error()
	default:
		ev = h.log.Warn()
	}
	add := func(a slog.Attr) bool {
		ev = ev.Str(a.Key, redact(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	ev.Msg(redact(r.Message))
	return nil
}

func (h *slogBridge) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &slogBridge{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *slogBridge) WithGroup(string) slog.Handler { return h }

// redact hides values that may carry credentials.
func redact(s string) string {
	l := strings.ToLower(s)
	if strings.Contains(l, "authorization") || strings.Contains(l, "bearer") || strings.Contains(l, "eyj") {
		return "[redacted]"
	}
	return s
}
