package memcache

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// SASLMechanisms is the reply to SASL_LIST_MECHS: the mechanisms mnemo
// implements, separated by spaces as cyrus-sasl lists them.
const SASLMechanisms = "CRAM-MD5 PLAIN"

// ErrMalformedCredentials is returned for a credentials file with a line
// that is not "user:password".
var ErrMalformedCredentials = errors.New("memcache: malformed credentials file")

// Credentials are the users and passwords a server accepts: memcached's
// SASL password database (MEMCACHED_SASL_PWDB) or its ascii
// authentication file (-Y). Check compares in constant time.
type Credentials struct {
	entries []credential
}

type credential struct {
	user, pass []byte
	userSum    [32]byte
	passSum    [32]byte
}

// ParseCredentials reads "user:password" lines (a trailing "\r" is
// dropped; empty lines are skipped). With pwdb set the password ends at
// the next ':' too, as in memcached's SASL password database, which allows
// more fields after it, and a line without ':' is ignored; otherwise (the
// -Y file) the password is the rest of the line and a non-empty line
// without ':' is an error wrapping ErrMalformedCredentials that names the
// line number, never its content.
func ParseCredentials(data []byte, pwdb bool) (*Credentials, error) {
	c := &Credentials{}
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		user, pass, ok := bytes.Cut(line, []byte(":"))
		if !ok && pwdb {
			continue // memcached's SASL lookup never matches such a line
		}
		if !ok {
			return nil, fmt.Errorf("%w: line %d is not user:password", ErrMalformedCredentials, n)
		}
		if pwdb {
			pass, _, _ = bytes.Cut(pass, []byte(":"))
		}
		e := credential{user: bytes.Clone(user), pass: bytes.Clone(pass)}
		e.userSum, e.passSum = sha256.Sum256(user), sha256.Sum256(pass)
		c.entries = append(c.entries, e)
	}
	return c, nil
}

// LoadCredentials reads an ascii authentication file (memcached -Y):
// "user:password" lines.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("memcache: could not open authfile %s: %w", path, err)
	}
	c, err := ParseCredentials(data, false)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return c, nil
}

// ErrNoSASLUsers is returned by CheckSASLPasswordFile for a password
// database without a single "user:password" line.
var ErrNoSASLUsers = errors.New("memcache: SASL password database has no user:password line")

// CheckSASLPasswordFile checks, at start, the SASL password database a
// server with SASL on (-S) will read at each authentication: it must be
// named, readable and hold at least one user. memcached refuses to start
// when its SASL setup fails; a server started with a database it cannot
// use would refuse every client. The error names the path, never the
// file's content.
func CheckSASLPasswordFile(path string) error {
	if path == "" {
		return errors.New("memcache: SASL is on but no password database is set (MEMCACHED_SASL_PWDB or --sasl-pwdb)")
	}
	c, err := loadPWDB(path)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, path)
	}
	if c.Len() == 0 {
		return fmt.Errorf("%w (%s)", ErrNoSASLUsers, path)
	}
	return nil
}

// loadPWDB reads a SASL password database (MEMCACHED_SASL_PWDB).
func loadPWDB(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("memcache: could not read SASL password database: %w", err)
	}
	return ParseCredentials(data, true)
}

// Len returns the number of users.
func (c *Credentials) Len() int { return len(c.entries) }

// Check reports whether user and pass match an entry. It compares digests
// of both against every entry in constant time, so that the time taken
// says nothing about which part, or which entry, differed.
func (c *Credentials) Check(user, pass []byte) bool {
	if c == nil {
		return false
	}
	us, ps := sha256.Sum256(user), sha256.Sum256(pass)
	found := 0
	for i := range c.entries {
		e := &c.entries[i]
		found |= subtle.ConstantTimeCompare(us[:], e.userSum[:]) & subtle.ConstantTimeCompare(ps[:], e.passSum[:])
	}
	return found == 1
}

// password returns user's password (for CRAM-MD5, which needs it to
// compute the expected digest).
func (c *Credentials) password(user []byte) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	us := sha256.Sum256(user)
	var pass []byte
	for i := range c.entries {
		e := &c.entries[i]
		if subtle.ConstantTimeCompare(us[:], e.userSum[:]) == 1 && pass == nil {
			pass = e.pass
		}
	}
	return pass, pass != nil
}

// saslResult is the outcome of one SASL_AUTH or SASL_STEP.
type saslResult uint8

const (
	saslFail     saslResult = iota // AUTH_ERROR
	saslOK                         // authenticated
	saslContinue                   // AUTH_CONTINUE with a challenge
)

// saslState is one connection's SASL exchange in progress.
type saslState struct {
	started   bool
	mech      string // "PLAIN" or "CRAM-MD5" while started
	challenge []byte // CRAM-MD5's challenge
}

// start begins an exchange with mechanism mech and the client's initial
// data. It returns the result and, for saslContinue, the challenge.
func (st *saslState) start(creds func() (*Credentials, error), mech, data []byte) (saslResult, []byte, error) {
	*st = saslState{}
	switch string(mech) {
	case "PLAIN":
		if len(data) == 0 {
			// The client sends its credentials in a SASL_STEP.
			st.started, st.mech = true, "PLAIN"
			return saslContinue, nil, nil
		}
		return plainCheck(creds, data)
	case "CRAM-MD5":
		st.started, st.mech = true, "CRAM-MD5"
		st.challenge = newChallenge()
		return saslContinue, st.challenge, nil
	}
	return saslFail, nil, nil
}

// step continues an exchange with the client's response.
func (st *saslState) step(creds func() (*Credentials, error), data []byte) (saslResult, []byte, error) {
	if !st.started {
		return saslFail, nil, nil
	}
	mech, challenge := st.mech, st.challenge
	*st = saslState{}
	switch mech {
	case "PLAIN":
		return plainCheck(creds, data)
	case "CRAM-MD5":
		return cramCheck(creds, challenge, data)
	}
	return saslFail, nil, nil
}

// plainCheck checks a PLAIN message: authzid NUL authcid NUL password
// (RFC 4616). The authorization identity must be empty or the
// authentication identity, as cyrus-sasl requires without an authorization
// callback.
func plainCheck(creds func() (*Credentials, error), data []byte) (saslResult, []byte, error) {
	authz, rest, ok1 := bytes.Cut(data, []byte{0})
	user, pass, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || len(user) == 0 || (len(authz) > 0 && !bytes.Equal(authz, user)) {
		return saslFail, nil, nil
	}
	c, err := creds()
	if err != nil {
		return saslFail, nil, err
	}
	if c.Check(user, pass) {
		return saslOK, nil, nil
	}
	return saslFail, nil, nil
}

// cramCheck checks a CRAM-MD5 response (RFC 2195): the user name, a
// space and the hex HMAC-MD5 of the challenge keyed by the password.
func cramCheck(creds func() (*Credentials, error), challenge, data []byte) (saslResult, []byte, error) {
	i := bytes.LastIndexByte(data, ' ')
	if i <= 0 {
		return saslFail, nil, nil
	}
	user, digest := data[:i], data[i+1:]
	c, err := creds()
	if err != nil {
		return saslFail, nil, err
	}
	pass, ok := c.password(user)
	if !ok {
		pass = nil // still compute a digest: take the same time
	}
	m := hmac.New(md5.New, pass)
	m.Write(challenge)
	want := hex.AppendEncode(nil, m.Sum(nil))
	if hmac.Equal(want, bytes.ToLower(digest)) && ok {
		return saslOK, nil, nil
	}
	return saslFail, nil, nil
}

// newChallenge returns a CRAM-MD5 challenge in RFC 2195's form:
// <random.timestamp@hostname>.
func newChallenge() []byte {
	var r [8]byte
	_, _ = rand.Read(r[:])
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	b := []byte("<")
	b = hex.AppendEncode(b, r[:])
	b = append(b, '.')
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, '@')
	b = append(b, host...)
	return append(b, '>')
}
