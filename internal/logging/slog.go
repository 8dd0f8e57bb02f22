package logging

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// SlogHandler returns a slog.Handler that writes records to l. Levels map
// to the nearest zerolog level at or below them (slog.LevelDebug-4 is
// trace, anything above error is error: a library never exits the
// process); attributes become fields, groups nested objects, and
// slog.LogValuer values are resolved. Timestamps come from l.
func SlogHandler(l zerolog.Logger) slog.Handler {
	return &slogHandler{l: l}
}

// Slog returns a *slog.Logger that writes to l, for libraries such as sipgo
// that log through log/slog.
func Slog(l zerolog.Logger) *slog.Logger {
	return slog.New(SlogHandler(l))
}

// slogHandler keeps WithAttrs and WithGroup calls as a list and renders it
// for every record, so attributes added inside a group land in the same
// JSON object as the record's own attributes.
type slogHandler struct {
	l   zerolog.Logger
	ops []groupOrAttrs
}

// groupOrAttrs is one WithGroup (group != "") or WithAttrs call.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

// zerologLevel maps a slog level to a zerolog level.
func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l < slog.LevelDebug:
		return zerolog.TraceLevel
	case l < slog.LevelInfo:
		return zerolog.DebugLevel
	case l < slog.LevelWarn:
		return zerolog.InfoLevel
	case l < slog.LevelError:
		return zerolog.WarnLevel
	default:
		return zerolog.ErrorLevel
	}
}

func (h *slogHandler) Enabled(_ context.Context, level slog.Level) bool {
	lvl := zerologLevel(level)
	return lvl >= h.l.GetLevel() && lvl >= zerolog.GlobalLevel()
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(groupOrAttrs{attrs: attrs})
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *slogHandler) with(op groupOrAttrs) *slogHandler {
	ops := make([]groupOrAttrs, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &slogHandler{l: h.l, ops: append(ops, op)}
}

func (h *slogHandler) Handle(ctx context.Context, r slog.Record) error {
	e := h.l.WithLevel(zerologLevel(r.Level))
	if e == nil {
		return nil
	}
	e = e.Ctx(ctx)

	// Split the handler's operations into levels: attributes outside any
	// group, then one level per group.
	type level struct {
		group string
		attrs []slog.Attr
	}
	levels := []level{{}}
	for _, op := range h.ops {
		if op.group != "" {
			levels = append(levels, level{group: op.group})
			continue
		}
		last := &levels[len(levels)-1]
		last.attrs = append(last.attrs, op.attrs...)
	}
	r.Attrs(func(a slog.Attr) bool {
		last := &levels[len(levels)-1]
		last.attrs = append(last.attrs, a)
		return true
	})

	// Build the innermost group first; a group with nothing in it is left
	// out, as slog requires.
	var inner *zerolog.Event
	innerName := ""
	for i := len(levels) - 1; i >= 1; i-- {
		d := zerolog.Dict()
		n := addAttrs(d, levels[i].attrs)
		if inner != nil {
			d.Dict(innerName, inner)
			n++
		}
		if n == 0 {
			inner, innerName = nil, ""
			continue
		}
		inner, innerName = d, levels[i].group
	}
	addAttrs(e, levels[0].attrs)
	if inner != nil {
		e.Dict(innerName, inner)
	}
	e.Msg(r.Message)
	return nil
}

// addAttrs writes attrs to e and returns how many fields it wrote.
func addAttrs(e *zerolog.Event, attrs []slog.Attr) int {
	n := 0
	for _, a := range attrs {
		if addAttr(e, a) {
			n++
		}
	}
	return n
}

// addAttr writes one attribute to e and reports whether it wrote anything.
func addAttr(e *zerolog.Event, a slog.Attr) bool {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return false
	}
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		e.Str(a.Key, v.String())
	case slog.KindInt64:
		e.Int64(a.Key, v.Int64())
	case slog.KindUint64:
		e.Uint64(a.Key, v.Uint64())
	case slog.KindFloat64:
		e.Float64(a.Key, v.Float64())
	case slog.KindBool:
		e.Bool(a.Key, v.Bool())
	case slog.KindDuration:
		e.Dur(a.Key, v.Duration())
	case slog.KindTime:
		e.Time(a.Key, v.Time())
	case slog.KindGroup:
		attrs := v.Group()
		if a.Key == "" {
			// An unnamed group is inlined.
			return addAttrs(e, attrs) > 0
		}
		d := zerolog.Dict()
		if addAttrs(d, attrs) == 0 {
			return false
		}
		e.Dict(a.Key, d)
	default:
		switch x := v.Any().(type) {
		case error:
			e.AnErr(a.Key, x)
		default:
			e.Interface(a.Key, x)
		}
	}
	return true
}
