package logging

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"
)

// ConsoleTimeFormat is the timestamp layout of the console format.
const ConsoleTimeFormat = "15:04:05"

// New returns a logger writing to w at the given level (trace, debug, info,
// warn, error; empty means info), with a timestamp on every entry. The
// output is zerolog's console format, coloured, when w is a terminal, the
// console format without colour when console is true, and JSON lines
// otherwise. An unknown level selects info, and the logger's first entry
// says so.
func New(w io.Writer, level string, console bool) zerolog.Logger {
	lvl, err := ParseLevel(level)
	tty := isTerminal(w)
	if tty || console {
		w = zerolog.ConsoleWriter{Out: w, NoColor: !tty, TimeFormat: ConsoleTimeFormat}
	}
	l := zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	if err != nil {
		l.Warn().Str("requested_level", level).Msg("unknown log level, using info")
	}
	return l
}

// ParseLevel parses a level name as New does: trace, debug, info, warn
// (or warning), error, fatal, panic, disabled; empty means info.
func ParseLevel(level string) (zerolog.Level, error) {
	level = strings.ToLower(strings.TrimSpace(level))
	switch level {
	case "":
		return zerolog.InfoLevel, nil
	case "warning":
		return zerolog.WarnLevel, nil
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.InfoLevel, errUnknownLevel(level)
	}
	return lvl, nil
}

type errUnknownLevel string

func (e errUnknownLevel) Error() string { return "logging: unknown level " + `"` + string(e) + `"` }

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// minRedact is the shortest input Redact fingerprints; a shorter secret is
// too easy to recover from an unkeyed hash by trying every value.
const minRedact = 16

// Redact returns a fingerprint of a token or secret that is safe to log:
// "sha256:" and the first 12 hex digits of its SHA-256, the same for the
// same input in every process, so an issuer's and an edge's log lines about
// one token can be matched. Inputs shorter than 16 bytes, too short to
// hide behind a hash, all give the same placeholder "[redacted]", which
// says nothing about them; the empty string gives "". A fingerprint never
// contains its input.
func Redact(s string) string {
	if s == "" {
		return ""
	}
	if len(s) < minRedact {
		return "[redacted]"
	}
	sum := sha256.Sum256([]byte(s))
	out := "sha256:" + hex.EncodeToString(sum[:6])
	if strings.Contains(out, s) {
		return "[redacted]"
	}
	return out
}
