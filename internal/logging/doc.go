// Package logging sets up trunkpass's zerolog loggers: JSON lines by
// default, a human-readable console format on a terminal.
//
// [SlogHandler] routes log/slog records (sipgo logs through *slog.Logger)
// into a zerolog logger, and [Redact] turns a token or secret into a short
// fingerprint that lets log lines be correlated without revealing it.
package logging
