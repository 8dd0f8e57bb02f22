package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/rs/zerolog"
)

// decode parses the JSON lines in buf.
func decode(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestSlogConformance runs the standard library's handler test suite.
func TestSlogConformance(t *testing.T) {
	var mu sync.Mutex
	bufs := map[*testing.T]*bytes.Buffer{}
	newHandler := func(t *testing.T) slog.Handler {
		buf := new(bytes.Buffer)
		mu.Lock()
		bufs[t] = buf
		mu.Unlock()
		return SlogHandler(zerolog.New(buf).With().Timestamp().Logger())
	}
	result := func(t *testing.T) map[string]any {
		if strings.HasSuffix(t.Name(), "/zero-time") {
			t.Skip("timestamps come from the zerolog logger, not the record")
		}
		mu.Lock()
		buf := bufs[t]
		mu.Unlock()
		lines := decode(t, buf)
		if len(lines) != 1 {
			t.Fatalf("%d entries, want 1: %s", len(lines), buf)
		}
		m := lines[0]
		// zerolog names the message field "message"; slog calls it "msg".
		if v, ok := m[zerolog.MessageFieldName]; ok {
			delete(m, zerolog.MessageFieldName)
			m[slog.MessageKey] = v
		}
		return m
	}
	slogtest.Run(t, newHandler, result)
}

func TestSlogLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slog    slog.Level
		want    string // zerolog level name, "" for dropped
		atLevel zerolog.Level
	}{
		{slog.LevelDebug - 4, "trace", zerolog.TraceLevel},
		{slog.LevelDebug - 4, "", zerolog.DebugLevel},
		{slog.LevelDebug, "debug", zerolog.TraceLevel},
		{slog.LevelDebug, "", zerolog.InfoLevel},
		{slog.LevelInfo, "info", zerolog.InfoLevel},
		{slog.LevelInfo + 1, "info", zerolog.InfoLevel},
		{slog.LevelWarn, "warn", zerolog.InfoLevel},
		{slog.LevelWarn, "", zerolog.ErrorLevel},
		{slog.LevelError, "error", zerolog.ErrorLevel},
		{slog.LevelError + 4, "error", zerolog.InfoLevel},
		{slog.LevelError, "", zerolog.Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.slog.String()+"@"+tt.atLevel.String(), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			h := SlogHandler(zerolog.New(&buf).Level(tt.atLevel))
			if got := h.Enabled(context.Background(), tt.slog); got != (tt.want != "") {
				t.Errorf("Enabled = %v", got)
			}
			slog.New(h).Log(context.Background(), tt.slog, "hello")
			lines := decode(t, &buf)
			if tt.want == "" {
				if len(lines) != 0 {
					t.Fatalf("logged %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 || lines[0]["level"] != tt.want || lines[0]["message"] != "hello" {
				t.Fatalf("got %v, want one %s entry", lines, tt.want)
			}
		})
	}
}

type valuer string

func (v valuer) LogValue() slog.Value { return slog.StringValue("resolved-" + string(v)) }

func TestSlogAttrsAndGroups(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]any
	}{
		{
			name: "types",
			log: func(l *slog.Logger) {
				l.Info("m", "s", "x", "i", -3, "u", uint64(7), "f", 1.5, "b", true,
					"d", 1500*time.Millisecond, "t", when, "err", errors.New("boom"),
					"any", []int{1, 2}, "v", valuer("a"))
			},
			want: map[string]any{
				"s": "x", "i": -3.0, "u": 7.0, "f": 1.5, "b": true, "d": 1500.0,
				"t": "2026-01-01T00:00:00Z", "err": "boom", "any": []any{1.0, 2.0},
				"v": "resolved-a",
			},
		},
		{
			name: "WithAttrs then groups",
			log: func(l *slog.Logger) {
				l.With("conn", "ws-1").WithGroup("sip").With("method", "INVITE").
					WithGroup("from").Info("m", "user", "alice", slog.Group("tag", "k", "v"))
			},
			want: map[string]any{
				"conn": "ws-1",
				"sip": map[string]any{
					"method": "INVITE",
					"from":   map[string]any{"user": "alice", "tag": map[string]any{"k": "v"}},
				},
			},
		},
		{
			name: "empty groups left out",
			log: func(l *slog.Logger) {
				l.WithGroup("a").With("k", 1).WithGroup("b").WithGroup("c").Info("m", slog.Group("empty"))
			},
			want: map[string]any{"a": map[string]any{"k": 1.0}},
		},
		{
			name: "inline group and empty attr",
			log: func(l *slog.Logger) {
				l.Info("m", slog.Group("", "x", 1), slog.Attr{}, "y", 2)
			},
			want: map[string]any{"x": 1.0, "y": 2.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.log(Slog(zerolog.New(&buf)))
			lines := decode(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d entries", len(lines))
			}
			got := lines[0]
			delete(got, "level")
			delete(got, "message")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestSlogHandlerIsImmutable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	base := Slog(zerolog.New(&buf))
	a := base.With("a", 1)
	_ = a.WithGroup("g").With("x", 1)
	a.Info("m")
	base.Info("m")
	lines := decode(t, &buf)
	if _, ok := lines[0]["g"]; ok || lines[0]["a"] != 1.0 {
		t.Errorf("first = %v", lines[0])
	}
	if _, ok := lines[1]["a"]; ok {
		t.Errorf("second = %v", lines[1])
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		l := New(&buf, "debug", false)
		l.Debug().Str("k", "v").Msg("hello")
		l.Trace().Msg("dropped")
		lines := decode(t, &buf)
		if len(lines) != 1 {
			t.Fatalf("%d entries: %s", len(lines), buf.String())
		}
		m := lines[0]
		if m["level"] != "debug" || m["message"] != "hello" || m["k"] != "v" {
			t.Errorf("entry = %v", m)
		}
		if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil {
			t.Errorf("time: %v", err)
		}
	})
	t.Run("console", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		l := New(&buf, "info", true)
		l.Info().Str("k", "v").Msg("hello")
		out := buf.String()
		if json.Valid(bytes.TrimSpace(buf.Bytes())) || !strings.Contains(out, "hello") || !strings.Contains(out, "k=v") {
			t.Errorf("console output = %q", out)
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("colour codes outside a terminal: %q", out)
		}
	})
	t.Run("levels", func(t *testing.T) {
		t.Parallel()
		for level, want := range map[string]zerolog.Level{
			"": zerolog.InfoLevel, "trace": zerolog.TraceLevel, "WARN": zerolog.WarnLevel,
			"warning": zerolog.WarnLevel, "error": zerolog.ErrorLevel, "disabled": zerolog.Disabled,
		} {
			var buf bytes.Buffer
			if got := New(&buf, level, false).GetLevel(); got != want {
				t.Errorf("New(%q) level = %v, want %v", level, got, want)
			}
			if buf.Len() != 0 {
				t.Errorf("New(%q) logged %q", level, buf.String())
			}
		}
	})
	t.Run("unknown level", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		l := New(&buf, "verbose", false)
		if l.GetLevel() != zerolog.InfoLevel {
			t.Errorf("level = %v", l.GetLevel())
		}
		lines := decode(t, &buf)
		if len(lines) != 1 || lines[0]["level"] != "warn" || lines[0]["requested_level"] != "verbose" {
			t.Errorf("entries = %v", lines)
		}
		if _, err := ParseLevel("verbose"); err == nil {
			t.Error("ParseLevel(verbose) succeeded")
		}
	})
}

func TestRedact(t *testing.T) {
	t.Parallel()
	jwt := "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	got := Redact(jwt)
	if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+12 {
		t.Errorf("Redact = %q", got)
	}
	if Redact(jwt) != got {
		t.Error("not deterministic")
	}
	if Redact(jwt+"x") == got {
		t.Error("different inputs, same fingerprint")
	}
	for in, want := range map[string]string{
		"":                "",
		"a":               "[redacted]",
		"sha256:":         "[redacted]",
		"123456789012345": "[redacted]",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedact checks that the fingerprint never contains its input, and
// that inputs too short to fingerprint all give the same placeholder.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"", "a", "s", "sha256", "sha256:", "0123456789abcdef",
		"sha256:0123456789ab", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig",
		"1767225600:alice@acme.trunk.example.net", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		switch {
		case s == "":
			if got != "" {
				t.Fatalf("Redact(\"\") = %q", got)
			}
		case len(s) < 16:
			if got != "[redacted]" {
				t.Fatalf("Redact(%q) = %q, want the placeholder", s, got)
			}
		case strings.Contains(got, s):
			t.Fatalf("Redact(%q) = %q contains the input", s, got)
		}
	})
}
