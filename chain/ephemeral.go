package chain

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Hash names the HMAC hash of ephemeral credentials.
type Hash string

// Hashes accepted for ephemeral credentials. SHA1 is what Kamailio
// auth_ephemeral (default) and coturn use-auth-secret expect.
const (
	SHA1   Hash = "sha1"
	SHA256 Hash = "sha256"
	SHA384 Hash = "sha384"
	SHA512 Hash = "sha512"
)

// ParseHash maps a configuration value ("sha1", "SHA-256", "") to a Hash;
// the empty string means SHA1.
func ParseHash(s string) (Hash, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "-", "")) {
	case "", "sha1":
		return SHA1, nil
	case "sha256":
		return SHA256, nil
	case "sha384":
		return SHA384, nil
	case "sha512":
		return SHA512, nil
	}
	return "", fmt.Errorf("ephemeral hash %q: %w", s, ErrAlgorithm)
}

func (h Hash) new() (func() hash.Hash, error) {
	switch h {
	case "", SHA1:
		return sha1.New, nil
	case SHA256:
		return sha256.New, nil
	case SHA384:
		return sha512.New384, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("ephemeral hash %q: %w", string(h), ErrAlgorithm)
}

// EphemeralFormat describes how an ephemeral username is laid out and how
// its password is derived. The zero value is the interoperable default:
// "<expiry>:<user>", HMAC-SHA1.
type EphemeralFormat struct {
	// UserFirst selects the old "<user>:<expiry>" order
	// (auth_ephemeral username_format=0).
	UserFirst bool
	// Separator between expiry and user; ':' when zero.
	Separator byte
	// Hash of the HMAC; SHA1 when empty.
	Hash Hash
}

func (f EphemeralFormat) sep() byte {
	if f.Separator == 0 {
		return ':'
	}
	return f.Separator
}

// Username lays out an ephemeral username for user and expiry.
func (f EphemeralFormat) Username(user string, expiry time.Time) string {
	ts := strconv.FormatInt(expiry.Unix(), 10)
	sep := string([]byte{f.sep()}) // the byte itself, not the rune of that value
	if f.UserFirst {
		return user + sep + ts
	}
	return ts + sep + user
}

// ParseUsername splits an ephemeral username into user and expiry. The
// user may itself contain the separator in expiry-first order (the split is
// at the first separator); in user-first order the split is at the last.
func (f EphemeralFormat) ParseUsername(username string) (user string, expiry time.Time, err error) {
	sep := f.sep()
	var ts string
	if f.UserFirst {
		i := strings.LastIndexByte(username, sep)
		if i < 0 {
			return "", time.Time{}, fmt.Errorf("ephemeral username has no separator: %w", ErrMalformed)
		}
		user, ts = username[:i], username[i+1:]
	} else {
		i := strings.IndexByte(username, sep)
		if i < 0 {
			return "", time.Time{}, fmt.Errorf("ephemeral username has no separator: %w", ErrMalformed)
		}
		ts, user = username[:i], username[i+1:]
	}
	if user == "" {
		return "", time.Time{}, fmt.Errorf("ephemeral username has no user: %w", ErrMalformed)
	}
	if ts == "" || len(ts) > 12 || ts[0] == '+' || ts[0] == '-' {
		return "", time.Time{}, fmt.Errorf("ephemeral username expiry %q: %w", ts, ErrMalformed)
	}
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil {
		return "", time.Time{}, fmt.Errorf("ephemeral username expiry %q: %w", ts, ErrMalformed)
	}
	return user, time.Unix(sec, 0), nil
}

// Password derives the password of an ephemeral username: standard base64
// (with padding) of HMAC-H(secret, username).
func (f EphemeralFormat) Password(secret []byte, username string) (string, error) {
	newHash, err := f.Hash.new()
	if err != nil {
		return "", err
	}
	m := hmac.New(newHash, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// MintEphemeral returns the username and password of an ephemeral
// credential for user, valid until expiry.
func MintEphemeral(secret []byte, user string, expiry time.Time, f EphemeralFormat) (username, password string, err error) {
	username = f.Username(user, expiry)
	password, err = f.Password(secret, username)
	if err != nil {
		return "", "", fmt.Errorf("mint ephemeral credential: %w", err)
	}
	return username, password, nil
}

// EphemeralVerifier checks ephemeral credentials against a set of shared
// secrets, newest first.
type EphemeralVerifier struct {
	// Format of usernames and passwords.
	Format EphemeralFormat
	// Secrets to try, newest first. At least one is required.
	Secrets [][]byte
	// MaxLifetime refuses credentials expiring further than this in the
	// future (auth_ephemeral checks no upper bound). Zero means no bound.
	MaxLifetime time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// EphemeralCredential is what a verified ephemeral credential says.
type EphemeralCredential struct {
	User   string
	Expiry time.Time
	// SecretIndex is the index in Secrets of the secret that verified it.
	SecretIndex int
}

// Check parses username, checks its expiry and lifetime, then compares
// password in constant time with the password each secret derives.
func (v *EphemeralVerifier) Check(username, password string) (EphemeralCredential, error) {
	user, expiry, err := v.CheckUsername(username)
	if err != nil {
		return EphemeralCredential{}, err
	}
	for i, s := range v.Secrets {
		want, err := v.Format.Password(s, username)
		if err != nil {
			return EphemeralCredential{}, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1 {
			return EphemeralCredential{User: user, Expiry: expiry, SecretIndex: i}, nil
		}
	}
	return EphemeralCredential{}, fmt.Errorf("ephemeral password: %w", ErrBadSignature)
}

// CheckUsername parses username and checks its expiry and lifetime, without
// a password; Digest verifiers call it before deriving the password.
func (v *EphemeralVerifier) CheckUsername(username string) (user string, expiry time.Time, err error) {
	user, expiry, err = v.Format.ParseUsername(username)
	if err != nil {
		return "", time.Time{}, err
	}
	now := nowFunc(v.Now)()
	if !now.Before(expiry) {
		return "", time.Time{}, fmt.Errorf("ephemeral credential expired at %d: %w", expiry.Unix(), ErrExpired)
	}
	if v.MaxLifetime > 0 && expiry.Sub(now) > v.MaxLifetime {
		return "", time.Time{}, fmt.Errorf("ephemeral credential expires in %s, more than %s: %w",
			expiry.Sub(now).Round(time.Second), v.MaxLifetime, ErrLifetime)
	}
	return user, expiry, nil
}

func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}
