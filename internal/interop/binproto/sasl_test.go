package binproto

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
	"github.com/mnemo-cache/mnemo/memcache"
	bin "github.com/mnemo-cache/mnemo/protocol/binary"
)

// Distinctive credentials, so that the log checks cannot match by chance.
const (
	saslUser  = "alice-7f3c"
	saslPass  = "s3cret-Pa55-9d1e"
	wrongPass = "wr0ng-Pa55-42ab"
)

func plain(authz, user, pass string) string { return authz + "\x00" + user + "\x00" + pass }

// startSASL starts mnemo with -S and a password database at -vv, and
// returns its address and log.
func startSASL(t *testing.T) (string, *lockedBuffer) {
	t.Helper()
	pw := writeFile(t, "pwdb", "bob:other\n"+saslUser+":"+saslPass+"\n")
	return startMnemo(t, "-S", "--sasl-pwdb", pw, "-vv")
}

func TestSASLNoAccessBeforeAuth(t *testing.T) {
	addr, _ := startSASL(t)
	for _, r := range [][]byte{
		get(bin.OpGet, 1, "k"),
		store(bin.OpSet, 1, 0, "k", "v", 0, 0),
		simple(bin.OpNoop, 1),
		req(bin.OpStat, 1, 0, nil, "", ""),
		simple(bin.OpFlush, 1),
		simple(0xee, 1), // even an unknown opcode
	} {
		c := dial(t, addr)
		// VERSION and the SASL commands are allowed.
		if f := c.roundTrip(simple(bin.OpVersion, 7)); f.status() != bin.StatusOK {
			t.Fatalf("VERSION before auth: %v", f)
		}
		if f := c.roundTrip(simple(bin.OpSASLListMechs, 8)); f.status() != bin.StatusOK || string(f.value()) != memcache.SASLMechanisms {
			t.Fatalf("SASL_LIST_MECHS: %v", f)
		}
		f := c.roundTrip(r)
		if f.status() != bin.StatusAuthError || f.Opaque != 1 || string(f.value()) != "Auth failure." {
			t.Fatalf("%x before auth: %v, want AUTH_ERROR", r[:2], f)
		}
		c.expectClosed()
	}
	// The text protocol is refused: the connection closes without a word.
	c := dial(t, addr)
	c.send([]byte("get k\r\n"))
	c.expectClosed()
}

func TestSASLWrongPasswordRefused(t *testing.T) {
	addr, _ := startSASL(t)
	for _, data := range []string{
		plain("", saslUser, wrongPass),
		plain("", saslUser, ""),
		plain("", "nobody", saslPass),
		plain("bob", saslUser, saslPass), // authorising as someone else
		plain("", saslUser, saslPass+"x"),
		saslUser + ":" + saslPass, // not a PLAIN message
	} {
		c := dial(t, addr)
		f := c.roundTrip(req(bin.OpSASLAuth, 3, 0, nil, "PLAIN", data))
		if f.status() != bin.StatusAuthError || string(f.value()) != "Auth failure." {
			t.Fatalf("SASL_AUTH %q: %v, want AUTH_ERROR", data, f)
		}
		// A failed attempt leaves the connection open but unauthenticated.
		if f := c.roundTrip(get(bin.OpGet, 4, "k")); f.status() != bin.StatusAuthError {
			t.Fatalf("GET after failed auth: %v", f)
		}
		c.expectClosed()
	}
	// Unknown mechanisms and a step without a start fail too.
	c := dial(t, addr)
	if f := c.roundTrip(req(bin.OpSASLAuth, 5, 0, nil, "GSSAPI", "x")); f.status() != bin.StatusAuthError {
		t.Fatalf("unknown mechanism: %v", f)
	}
	if f := c.roundTrip(req(bin.OpSASLStep, 6, 0, nil, "PLAIN", plain("", saslUser, saslPass))); f.status() != bin.StatusAuthError {
		t.Fatalf("step without start: %v", f)
	}
}

func TestSASLRightPasswordAccepted(t *testing.T) {
	addr, _ := startSASL(t)

	// PLAIN with the initial response.
	c := dial(t, addr)
	if f := c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, "PLAIN", plain("", saslUser, saslPass))); f.status() != bin.StatusOK || string(f.value()) != "Authenticated" {
		t.Fatalf("PLAIN: %v", f)
	}
	if f := c.roundTrip(store(bin.OpSet, 2, 0, "k", "v", 0, 0)); f.status() != bin.StatusOK {
		t.Fatalf("SET after auth: %v", f)
	}
	if f := c.roundTrip(get(bin.OpGet, 3, "k")); f.status() != bin.StatusOK || string(f.value()) != "v" {
		t.Fatalf("GET after auth: %v", f)
	}
	// A new attempt drops the authentication first, as in memcached.
	if f := c.roundTrip(req(bin.OpSASLAuth, 4, 0, nil, "PLAIN", plain("", saslUser, wrongPass))); f.status() != bin.StatusAuthError {
		t.Fatalf("second, wrong PLAIN: %v", f)
	}
	if f := c.roundTrip(get(bin.OpGet, 5, "k")); f.status() != bin.StatusAuthError {
		t.Fatalf("GET after failed re-auth: %v", f)
	}

	// PLAIN with the response in a step; authzid equal to the user.
	c = dial(t, addr)
	if f := c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, "PLAIN", "")); f.status() != bin.StatusAuthContinue || len(f.value()) != 0 {
		t.Fatalf("PLAIN without data: %v", f)
	}
	if f := c.roundTrip(req(bin.OpSASLStep, 2, 0, nil, "PLAIN", plain(saslUser, saslUser, saslPass))); f.status() != bin.StatusOK {
		t.Fatalf("PLAIN step: %v", f)
	}
	if f := c.roundTrip(get(bin.OpGet, 3, "k")); f.status() != bin.StatusOK {
		t.Fatalf("GET after PLAIN step: %v", f)
	}

	// CRAM-MD5: the digest of the challenge keyed by the password.
	for _, tt := range []struct {
		pass string
		want bin.Status
	}{{wrongPass, bin.StatusAuthError}, {saslPass, bin.StatusOK}} {
		c = dial(t, addr)
		f := c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, "CRAM-MD5", ""))
		if f.status() != bin.StatusAuthContinue || !strings.HasPrefix(string(f.value()), "<") {
			t.Fatalf("CRAM-MD5 start: %v", f)
		}
		m := hmac.New(md5.New, []byte(tt.pass))
		m.Write(f.value())
		resp := saslUser + " " + hex.EncodeToString(m.Sum(nil))
		if f := c.roundTrip(req(bin.OpSASLStep, 2, 0, nil, "CRAM-MD5", resp)); f.status() != tt.want {
			t.Fatalf("CRAM-MD5 step with %q: %v, want status 0x%02x", tt.pass, f, tt.want)
		}
	}
	if f := c.roundTrip(get(bin.OpGetK, 3, "k")); f.status() != bin.StatusOK || string(f.key()) != "k" {
		t.Fatalf("GETK after CRAM-MD5: %v", f)
	}

	// auth_cmds and auth_errors count the attempts.
	stats := map[string]string{}
	c.send(req(bin.OpStat, 9, 0, nil, "", ""))
	for {
		f := c.read()
		if f.KeyLen == 0 {
			break
		}
		stats[string(f.key())] = string(f.value())
	}
	if stats["auth_cmds"] != "5" || stats["auth_errors"] != "2" {
		t.Errorf("auth_cmds %q auth_errors %q, want 5 and 2", stats["auth_cmds"], stats["auth_errors"])
	}
}

// TestSASLPwdbFromEnvironment: without --sasl-pwdb, memcached's
// MEMCACHED_SASL_PWDB names the database.
func TestSASLPwdbFromEnvironment(t *testing.T) {
	t.Setenv("MEMCACHED_SASL_PWDB", writeFile(t, "pwdb", saslUser+":"+saslPass+"\n"))
	addr, _ := startMnemo(t, "-S")
	c := dial(t, addr)
	if f := c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, "PLAIN", plain("", saslUser, saslPass))); f.status() != bin.StatusOK {
		t.Fatalf("PLAIN: %v", f)
	}
}

// TestCredentialsNeverLogged authenticates right and wrong, over SASL and
// ascii authentication, at -vv, and checks that neither the passwords nor
// the user names reach the log.
func TestCredentialsNeverLogged(t *testing.T) {
	addr, logs := startSASL(t)
	for _, data := range []string{plain("", saslUser, saslPass), plain("", saslUser, wrongPass), plain(saslPass, saslUser, wrongPass)} {
		c := dial(t, addr)
		c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, "PLAIN", data))
		c.roundTrip(req(bin.OpSASLAuth, 1, 0, nil, saslPass, data)) // a mechanism name is no safer
		c.send(get(bin.OpGet, 2, saslPass))
		c.next()
	}
	authFile := writeFile(t, "auth", saslUser+":"+saslPass+"\n")
	aaddr, alogs := startMnemo(t, "-Y", authFile, "-vv")
	for _, pass := range []string{wrongPass, saslPass} {
		c := dialText(t, aaddr)
		c.send("set " + saslPass + " 0 0 " + itoa(len(saslUser)+1+len(pass)) + "\r\n" + saslUser + " " + pass + "\r\n")
		c.line()
	}
	for name, log := range map[string]string{"SASL": logs.String(), "ascii": alogs.String()} {
		if !strings.Contains(log, "authentication failed") {
			t.Errorf("%s log does not record the failed attempt:\n%s", name, log)
		}
		for _, secret := range []string{saslPass, wrongPass, saslUser} {
			if strings.Contains(log, secret) {
				t.Errorf("%s log holds %q:\n%s", name, secret, log)
			}
		}
	}
}

// TestASCIIAuth checks memcached's ascii authentication (-Y).
func TestASCIIAuth(t *testing.T) {
	authFile := writeFile(t, "auth", "bob:pw:with:colons\n"+saslUser+":"+saslPass+"\n")
	addr, _ := startMnemo(t, "-Y", authFile)
	c := dialText(t, addr)
	for _, tt := range []struct{ send, want string }{
		{"get k\r\n", "CLIENT_ERROR unauthenticated"},
		{"set k 0 0\r\n", "CLIENT_ERROR unauthenticated"},
		{"set k 0 0 x\r\n", "CLIENT_ERROR unauthenticated"},
		{"set k 0 0 5\r\nalice\r\n", "CLIENT_ERROR bad authentication token format"},
		{"set k 0 0 3\r\nabcde\r\n", "CLIENT_ERROR bad command line termination"},
		{"", "CLIENT_ERROR unauthenticated"}, // the "e\r\n" left over
		{"set k 0 0 " + itoa(len(saslUser)+1+len(wrongPass)) + "\r\n" + saslUser + " " + wrongPass + "\r\n", "CLIENT_ERROR authentication failure"},
		{"set k 0 0 13\r\nbob pw:with:c\r\n", "CLIENT_ERROR authentication failure"},
		{"set k 0 0 18\r\nbob pw:with:colons\r\n", "STORED"},
		{"set k 0 0 1\r\nv\r\n", "STORED"},
		{"get k\r\n", "VALUE k 0 1"},
	} {
		if tt.send != "" {
			c.send(tt.send)
		}
		if got := c.line(); got != tt.want {
			t.Fatalf("after %q: got %q, want %q", tt.send, got, tt.want)
		}
	}
	// Binary requests are text to an ascii-only server: nothing happens
	// until a newline.
	c2 := dialText(t, addr)
	c2.send("\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\r\n")
	if got := c2.line(); got != "CLIENT_ERROR unauthenticated" {
		t.Fatalf("binary VERSION on -Y: %q", got)
	}
}

// TestASCIIAuthDifferential compares mnemo's ascii authentication with
// memcached's, one command per batch (memcached keeps only the last reply
// of several auth errors in one batch, a bug mnemo does not copy).
func TestASCIIAuthDifferential(t *testing.T) {
	authFile := writeFile(t, "auth", saslUser+":"+saslPass+"\n")
	mc := startMemcached(t, nil, "-Y", authFile)
	mn, _ := startMnemo(t, "-Y", authFile)
	script := []string{
		"get k\r\n",
		"set k 0 0 5\r\nalice\r\n",
		"set k 0 0 " + itoa(len(saslUser)+1+len(wrongPass)) + "\r\n" + saslUser + " " + wrongPass + "\r\n",
		"set k 0 0 " + itoa(len(saslUser)+1+len(saslPass)) + "\r\n" + saslUser + " " + saslPass + "\r\n",
		"set k 0 0 1\r\nv\r\nget k\r\n",
	}
	play := func(addr string) []string {
		c := dialText(t, addr)
		var out []string
		for _, cmd := range script {
			c.send(cmd)
			out = append(out, c.line())
			if strings.HasPrefix(cmd, "set k 0 0 1\r\n") {
				out = append(out, c.line(), c.line(), c.line())
			}
		}
		return out
	}
	want, got := play(mc), play(mn)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("mnemo:\n%q\nmemcached:\n%q", got, want)
	}
}

// TestSASLDifferentialFailures compares what memcached -S and mnemo -S do
// before and after a failed authentication (Debian's memcached is built
// without MEMCACHED_SASL_PWDB support, so a successful login cannot be
// compared).
func TestSASLDifferentialFailures(t *testing.T) {
	conf := t.TempDir()
	if err := writeConf(conf); err != nil {
		t.Fatal(err)
	}
	pw := writeFile(t, "pwdb", saslUser+":"+saslPass+"\n")
	mc := startMemcached(t, []string{"SASL_CONF_PATH=" + conf, "MEMCACHED_SASL_PWDB=" + pw}, "-S")
	mn, _ := startMnemo(t, "-S", "--sasl-pwdb", pw)
	for _, sc := range []diffScript{
		{name: "get before auth", steps: []step{closes(get(bin.OpGet, 1, "k"))}},
		{name: "version then set", steps: []step{nFrames(1, simple(bin.OpVersion, 1)), closes(store(bin.OpSet, 2, 0, "k", "v", 0, 0))}},
		{name: "wrong password", steps: []step{
			nFrames(1, req(bin.OpSASLAuth, 1, 0, nil, "PLAIN", plain("", saslUser, wrongPass))),
			nFrames(1, req(bin.OpSASLStep, 2, 0, nil, "PLAIN", "x")),
			closes(simple(bin.OpNoop, 3)),
		}},
		// memcached reads a whole header before it checks the magic.
		{name: "text refused", steps: []step{closes([]byte("version\r\nversion\r\nversion\r\n"))}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			want, got := runScript(t, mc, sc), runScript(t, mn, sc)
			if string(transcriptBytes(got)) != string(transcriptBytes(want)) {
				t.Fatalf("mnemo:\n%s\nmemcached:\n%s", transcript(got), transcript(want))
			}
		})
	}
}

func writeConf(dir string) error {
	return writeFileErr(dir+"/memcached.conf", "mech_list: plain\n")
}

// textClient is a text-protocol connection.
type textClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialText(t testing.TB, addr string) *textClient {
	t.Helper()
	c := testserver.Dial(t, addr)
	return &textClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *textClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *textClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}
