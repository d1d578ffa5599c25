package memcache_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestASCIIAuth covers memcached's ascii authentication (-Y). Each step
// sends one command and waits for its reply: memcached keeps only the
// last reply of a pipelined batch before a connection authenticates.
func TestASCIIAuth(t *testing.T) {
	o := opts{authFile: "alice:secret\nbob:pw:with:colons\n"}
	auth := func(user, pass string) string {
		data := user + " " + pass
		return "set x 0 0 " + strconv.Itoa(len(data)) + "\r\n" + data + "\r\n"
	}
	const unauth = "CLIENT_ERROR unauthenticated\r\n"
	run(t, []transcript{
		{name: "commands before authenticating", opts: o, steps: []step{
			{send: "get k\r\n", want: unauth},
			{send: "version\r\n", want: unauth},
			{send: "mn\r\n", want: unauth},
			{send: "set k 0 0\r\n", want: unauth},
			{send: "set k 0 0 x\r\n", want: unauth},
			{send: "quit\r\n", want: unauth},
		}},
		{name: "bad token format", opts: o, steps: []step{
			{send: "set k 0 0 5\r\nalice\r\n", want: "CLIENT_ERROR bad authentication token format\r\n"},
			{send: "get k\r\n", want: unauth},
		}},
		{name: "wrong password, then the right one", opts: o, steps: []step{
			{send: auth("alice", "wrong"), want: "CLIENT_ERROR authentication failure\r\n"},
			{send: "get k\r\n", want: unauth},
			{send: auth("nobody", "secret"), want: "CLIENT_ERROR authentication failure\r\n"},
			{send: auth("alice", "secret"), want: "STORED\r\n"},
			{send: "get x\r\n", want: "END\r\n"}, // the authenticating set stores nothing
			{send: "set k 0 0 1\r\nv\r\nget k\r\n", want: "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"},
			{send: auth("alice", "wrong"), want: "STORED\r\n"}, // an ordinary set now
		}},
		{name: "a password with colons", opts: o, steps: []step{
			{send: auth("bob", "pw"), want: "CLIENT_ERROR authentication failure\r\n"},
			{send: auth("bob", "pw:with:colons"), want: "STORED\r\n"},
			{send: "mn\r\n", want: "MN\r\n"},
		}},
		{name: "data block without its line end", opts: o, steps: []step{
			{send: "set k 0 0 3\r\nabcde\r\n", want: "CLIENT_ERROR bad command line termination\r\n" + unauth},
		}, mnemoOnly: "memcached answers only the last command of the batch"},
		{name: "pipelined authentication and commands", opts: o, steps: []step{
			{send: auth("alice", "secret") + "set k 0 0 1\r\nv\r\nget k\r\n", want: "STORED\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"},
		}},
	})
}

// TestASCIIAuthStats checks that ascii authentication attempts count in
// auth_cmds and failures in auth_errors.
func TestASCIIAuthStats(t *testing.T) {
	srv := start(t, opts{authFile: "alice:secret\n"})
	c := dial(t, srv.addr)
	c.send("set x 0 0 11\r\nalice wrong\r\n")
	c.expect("wrong password", "CLIENT_ERROR authentication failure\r\n")
	c.send("set x 0 0 12\r\nalice secret\r\n")
	c.expect("right password", "STORED\r\n")
	_, v := c.stats("")
	if v["auth_cmds"] != "2" || v["auth_errors"] != "1" {
		t.Errorf("auth_cmds %q auth_errors %q, want 2 and 1", v["auth_cmds"], v["auth_errors"])
	}
}

// plain is a SASL PLAIN message: authzid NUL authcid NUL password.
func plain(authz, user, pass string) string { return authz + "\x00" + user + "\x00" + pass }

// TestSASL covers binary-protocol SASL authentication (-S) with a password
// database.
func TestSASL(t *testing.T) {
	o := opts{sasl: true, saslPWDB: "alice:secret\nbob:pw:more:fields\n"}
	authOK := func(op byte, opaque uint32) string { return res(op, stOK, opaque, 0, "", "", "Authenticated") }
	noSuccessOnOracle := "Debian's memcached has no password database: every login fails"
	run(t, []transcript{
		{name: "list mechanisms", opts: o,
			steps:     []step{{send: req(opSASLList, 1, 0, "", "", ""), want: res(opSASLList, stOK, 1, 0, "", "", "CRAM-MD5 PLAIN")}},
			mnemoOnly: "memcached lists cyrus-sasl's mechanisms"},
		{name: "a command before authenticating closes the connection", opts: o,
			steps:  []step{{send: req(opGet, 1, 0, "", "k", ""), want: errRes(opGet, stAuthError, 1)}},
			closes: true},
		{name: "version is allowed before authenticating", opts: o,
			steps: []step{
				{send: req(opVersion, 1, 0, "", "", ""), want: res(opVersion, stOK, 1, 0, "", "", version())},
				{send: req(opSet, 2, 0, store(0, 0), "k", "v"), want: errRes(opSet, stAuthError, 2)},
			},
			closes: true},
		{name: "stat before authenticating", opts: o,
			steps:  []step{{send: req(opStat, 1, 0, "", "", ""), want: errRes(opStat, stAuthError, 1)}},
			closes: true},
		{name: "wrong password", opts: o,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("", "alice", "wrong")), want: errRes(opSASLAuth, stAuthError, 1)},
				{send: req(opNoop, 2, 0, "", "", ""), want: errRes(opNoop, stAuthError, 2)},
			},
			closes: true},
		{name: "PLAIN in a step, wrong password", opts: o,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", ""), want: res(opSASLAuth, stAuthContinue, 1, 0, "", "", "")},
				{send: req(opSASLStep, 2, 0, "", "PLAIN", plain("", "alice", "wrong")), want: errRes(opSASLStep, stAuthError, 2)},
			}},
		{name: "unknown mechanism", opts: o,
			steps: []step{{send: req(opSASLAuth, 1, 0, "", "BOGUS", "x"), want: errRes(opSASLAuth, stAuthError, 1)}}},
		{name: "the text protocol is off", opts: o,
			steps:  []step{{send: "version\r\nversion\r\nversion\r\n", want: ""}},
			closes: true},
		{name: "PLAIN", opts: o, mnemoOnly: noSuccessOnOracle,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("", "alice", "secret")), want: authOK(opSASLAuth, 1)},
				{send: req(opGet, 2, 0, "", "k", "") + req(opSet, 3, 0, store(0, 0), "k", "v") + req(opGet, 4, 0, "", "k", ""),
					want: errRes(opGet, stNotFound, 2) + res(opSet, stOK, 3, 1, "", "", "") + item(opGet, 4, 1, 0, "", "v")},
			}},
		{name: "PLAIN with the authorization identity of the user", opts: o, mnemoOnly: noSuccessOnOracle,
			steps: []step{{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("alice", "alice", "secret")), want: authOK(opSASLAuth, 1)}}},
		{name: "PLAIN as another user is refused", opts: o,
			steps: []step{{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("bob", "alice", "secret")), want: errRes(opSASLAuth, stAuthError, 1)}}},
		{name: "the password ends at the next colon", opts: o, mnemoOnly: noSuccessOnOracle,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("", "bob", "pw:more:fields")), want: errRes(opSASLAuth, stAuthError, 1)},
				{send: req(opSASLAuth, 2, 0, "", "PLAIN", plain("", "bob", "pw")), want: authOK(opSASLAuth, 2)},
			}},
		{name: "PLAIN in a step", opts: o, mnemoOnly: noSuccessOnOracle,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", ""), want: res(opSASLAuth, stAuthContinue, 1, 0, "", "", "")},
				{send: req(opSASLStep, 2, 0, "", "PLAIN", plain("", "alice", "secret")), want: authOK(opSASLStep, 2)},
				{send: req(opNoop, 3, 0, "", "", ""), want: res(opNoop, stOK, 3, 0, "", "", "")},
			}},
		{name: "a failed attempt drops an earlier authentication", opts: o, mnemoOnly: noSuccessOnOracle,
			steps: []step{
				{send: req(opSASLAuth, 1, 0, "", "PLAIN", plain("", "alice", "secret")), want: authOK(opSASLAuth, 1)},
				{send: req(opSASLAuth, 2, 0, "", "PLAIN", plain("", "alice", "wrong")), want: errRes(opSASLAuth, stAuthError, 2)},
				{send: req(opGet, 3, 0, "", "k", ""), want: errRes(opGet, stAuthError, 3)},
			},
			closes: true},
	})
}

// TestSASLCRAMMD5 authenticates with CRAM-MD5: the server's challenge,
// keyed by the password.
func TestSASLCRAMMD5(t *testing.T) {
	skipOnOracle(t, "Debian's memcached has no password database: every login fails")
	srv := start(t, opts{sasl: true, saslPWDB: "alice:secret\n"})
	for _, tt := range []struct {
		pass   string
		status uint16
	}{{"wrong", stAuthError}, {"secret", stOK}} {
		c := dial(t, srv.addr)
		c.send(req(opSASLAuth, 1, 0, "", "CRAM-MD5", ""))
		challenge := c.frame(opSASLAuth, stAuthContinue)
		if !strings.HasPrefix(challenge, "<") || !strings.HasSuffix(challenge, ">") {
			t.Fatalf("challenge %q is not <...>", challenge)
		}
		m := hmac.New(md5.New, []byte(tt.pass))
		m.Write([]byte(challenge))
		c.send(req(opSASLStep, 2, 0, "", "CRAM-MD5", "alice "+hex.EncodeToString(m.Sum(nil))))
		c.frame(opSASLStep, tt.status)
	}
}

// TestSASLPasswordFileReread checks that the password database is read at
// each authentication, so that edits take effect without a restart.
func TestSASLPasswordFileReread(t *testing.T) {
	skipOnOracle(t, "Debian's memcached has no password database: every login fails")
	srv := start(t, opts{sasl: true, saslPWDB: "alice:secret\n"})
	c := dial(t, srv.addr)
	c.send(req(opSASLAuth, 1, 0, "", "PLAIN", plain("", "carol", "new")))
	c.expect("carol before she is added", errRes(opSASLAuth, stAuthError, 1))
	if err := os.WriteFile(srv.saslPWDB, []byte("alice:secret\ncarol:new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.send(req(opSASLAuth, 2, 0, "", "PLAIN", plain("", "carol", "new")))
	c.expect("carol after she is added", res(opSASLAuth, stOK, 2, 0, "", "", "Authenticated"))
}

// frame reads one response frame, checks its opcode and status, and
// returns its value.
func (c *conn) frame(op byte, status uint16) string {
	c.t.Helper()
	h := c.read(headerBytes)
	body := c.read(int(binary.BigEndian.Uint32(h[8:])))
	if h[0] != magicRes || h[1] != op || binary.BigEndian.Uint16(h[6:]) != status {
		c.t.Fatalf("got frame %s%s, want opcode %#x status %#x", show(h), show(body), op, status)
	}
	return string(body[int(h[4])+int(binary.BigEndian.Uint16(h[2:])):])
}
