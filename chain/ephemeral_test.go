package chain

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

type ephemeralVector struct {
	Hash      Hash   `json:"hash"`
	UserFirst bool   `json:"user_first"`
	Separator string `json:"separator"`
	Username  string `json:"username"`
	Password  string `json:"password"`
}

func loadEphemeralVectors(t testing.TB) (secret string, vs []ephemeralVector) {
	t.Helper()
	data, err := os.ReadFile("testdata/ephemeral_known_answers.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Secret  string            `json:"secret"`
		Vectors []ephemeralVector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Secret, doc.Vectors
}

func TestEphemeralKnownAnswers(t *testing.T) {
	secret, vectors := loadEphemeralVectors(t)
	expiry := time.Unix(1767225600, 0)
	for _, vec := range vectors {
		f := EphemeralFormat{UserFirst: vec.UserFirst, Separator: vec.Separator[0], Hash: vec.Hash}
		t.Run(vec.Username+" with "+string(vec.Hash)+" mints and verifies the known answer", func(t *testing.T) {
			username, password, err := MintEphemeral([]byte(secret), "alice", expiry, f)
			if err != nil {
				t.Fatal(err)
			}
			if username != vec.Username || password != vec.Password {
				t.Fatalf("MintEphemeral = %q, %q; want %q, %q", username, password, vec.Username, vec.Password)
			}
			v := &EphemeralVerifier{Format: f, Secrets: [][]byte{[]byte(secret)}, Now: clock(expiry.Add(-time.Hour))}
			cred, err := v.Check(vec.Username, vec.Password)
			if err != nil {
				t.Fatal(err)
			}
			if cred.User != "alice" || !cred.Expiry.Equal(expiry) || cred.SecretIndex != 0 {
				t.Fatalf("credential = %+v", cred)
			}
		})
	}
}

func TestEphemeralVerifier(t *testing.T) {
	expiry := t0.Add(time.Hour)
	newest, older := []byte("newest"), []byte("older")
	mint := func(secret []byte, user string, exp time.Time, f EphemeralFormat) (string, string) {
		u, p, err := MintEphemeral(secret, user, exp, f)
		if err != nil {
			t.Fatal(err)
		}
		return u, p
	}
	type tc struct {
		name        string
		format      EphemeralFormat
		username    string
		password    string
		maxLifetime time.Duration
		wantUser    string
		wantIndex   int
		want        error
	}
	u, p := mint(newest, "alice", expiry, EphemeralFormat{})
	uOld, pOld := mint(older, "alice", expiry, EphemeralFormat{})
	uFirst, pFirst := mint(newest, "alice", expiry, EphemeralFormat{UserFirst: true})
	uSep, pSep := mint(newest, "alice", expiry, EphemeralFormat{Separator: '.'})
	uHigh, pHigh := mint(newest, "alice", expiry, EphemeralFormat{Separator: 0xA7})
	uColon, pColon := mint(newest, "alice:work", expiry, EphemeralFormat{})
	uColonFirst, pColonFirst := mint(newest, "alice:work", expiry, EphemeralFormat{UserFirst: true})
	_, pStranger := mint([]byte("stranger"), "alice", expiry, EphemeralFormat{})
	uExp, pExp := mint(newest, "alice", t0, EphemeralFormat{})
	uLong, pLong := mint(newest, "alice", t0.Add(48*time.Hour), EphemeralFormat{})
	tests := []tc{
		{name: "a credential made with the newest secret verifies with index 0", username: u, password: p, wantUser: "alice", wantIndex: 0},
		{name: "a credential made with an older secret verifies with its index", username: uOld, password: pOld, wantUser: "alice", wantIndex: 1},
		{name: "a user-first credential verifies in user-first order", format: EphemeralFormat{UserFirst: true}, username: uFirst, password: pFirst, wantUser: "alice"},
		{name: "a user-first credential is malformed in expiry-first order", username: uFirst, password: pFirst, want: ErrMalformed},
		{name: "a credential with another separator verifies with that separator", format: EphemeralFormat{Separator: '.'}, username: uSep, password: pSep, wantUser: "alice"},
		{name: "a separator byte above 0x7F is written as that one byte", format: EphemeralFormat{Separator: 0xA7}, username: uHigh, password: pHigh, wantUser: "alice"},
		{name: "a user containing the separator splits at the first one in expiry-first order", username: uColon, password: pColon, wantUser: "alice:work"},
		{name: "a user containing the separator splits at the last one in user-first order", format: EphemeralFormat{UserFirst: true}, username: uColonFirst, password: pColonFirst, wantUser: "alice:work"},
		{name: "a credential expiring now is expired", username: uExp, password: pExp, want: ErrExpired},
		{name: "a credential expiring after MaxLifetime is refused", username: uLong, password: pLong, maxLifetime: 24 * time.Hour, want: ErrLifetime},
		{name: "a credential expiring far away verifies without MaxLifetime", username: uLong, password: pLong, wantUser: "alice"},
		{name: "a password made with an unknown secret is refused", username: u, password: pStranger, want: ErrBadSignature},
		{name: "an empty password is refused", username: u, password: "", want: ErrBadSignature},
		{name: "a password for another user is refused", username: "1767229200:bob", password: p, want: ErrBadSignature},
		{name: "a username without separator is malformed", username: "1767229200alice", password: p, want: ErrMalformed},
		{name: "a username with an empty user is malformed", username: "1767229200:", password: p, want: ErrMalformed},
		{name: "a username with an empty expiry is malformed", username: ":alice", password: p, want: ErrMalformed},
		{name: "a non-numeric expiry is malformed", username: "tomorrow:alice", password: p, want: ErrMalformed},
		{name: "an expiry with a plus sign is malformed", username: "+1767229200:alice", password: p, want: ErrMalformed},
		{name: "an expiry with a minus sign is malformed", username: "-1767229200:alice", password: p, want: ErrMalformed},
		{name: "an expiry that overflows int64 is malformed", username: "99999999999999999999:alice", password: p, want: ErrMalformed},
		{name: "an expiry of more than 12 digits is malformed", username: "0001767229200:alice", password: p, want: ErrMalformed},
		{name: "an expiry in hexadecimal is malformed", username: "0x6955b900:alice", password: p, want: ErrMalformed},
		{name: "an unknown hash is refused", format: EphemeralFormat{Hash: "md5"}, username: u, password: p, want: ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &EphemeralVerifier{Format: tt.format, Secrets: [][]byte{newest, older}, MaxLifetime: tt.maxLifetime, Now: clock(t0)}
			cred, err := v.Check(tt.username, tt.password)
			wantErr(t, err, tt.want)
			if tt.want == nil && (cred.User != tt.wantUser || cred.SecretIndex != tt.wantIndex || !cred.Expiry.After(t0)) {
				t.Fatalf("credential = %+v, want user %q index %d", cred, tt.wantUser, tt.wantIndex)
			}
		})
	}
}

func TestParseHash(t *testing.T) {
	tests := []struct {
		in   string
		want Hash
		err  error
	}{
		{"", SHA1, nil}, {"sha1", SHA1, nil}, {"SHA-1", SHA1, nil}, {"SHA-256", SHA256, nil},
		{"sha384", SHA384, nil}, {"Sha-512", SHA512, nil}, {"md5", "", ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run("hash "+tt.in, func(t *testing.T) {
			got, err := ParseHash(tt.in)
			wantErr(t, err, tt.err)
			if got != tt.want {
				t.Fatalf("ParseHash(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
