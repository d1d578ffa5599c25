package binproto

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
	bin "github.com/mnemo-cache/mnemo/protocol/binary"
)

// TestSASLOverTLS: the binary protocol with SASL authentication works
// unchanged over TLS (-S -Z), pipelined frames included, and refuses
// before authentication as it does in plaintext. (Debian's memcached has
// no password database to compare with; see TestSASLRightPasswordAccepted.)
func TestSASLOverTLS(t *testing.T) {
	pki := testserver.NewPKI(t)
	pw := writeFile(t, "pwdb", saslUser+":"+saslPass+"\n")
	addr, _ := startMnemo(t, append(pki.ServerFlags(""), "-S", "--sasl-pwdb", pw)...)
	dialTLS := func() *bclient {
		c, err := testserver.DialTLS(t, addr, pki.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("TLS version %x", v)
		}
		return &bclient{t: t, conn: testserver.Patient(c)}
	}

	c := dialTLS()
	if f := c.roundTrip(get(bin.OpGet, 1, "k")); f.status() != bin.StatusAuthError {
		t.Fatalf("GET before auth: %v", f)
	}
	c.expectClosed()

	c = dialTLS()
	if f := c.roundTrip(simple(bin.OpSASLListMechs, 1)); f.status() != bin.StatusOK || !strings.Contains(string(f.value()), "PLAIN") {
		t.Fatalf("SASL_LIST_MECHS: %v", f)
	}
	if f := c.roundTrip(req(bin.OpSASLAuth, 2, 0, nil, "PLAIN", plain("", saslUser, wrongPass))); f.status() != bin.StatusAuthError {
		t.Fatalf("wrong password: %v", f)
	}
	if f := c.roundTrip(req(bin.OpSASLAuth, 3, 0, nil, "PLAIN", plain("", saslUser, saslPass))); f.status() != bin.StatusOK {
		t.Fatalf("PLAIN: %v", f)
	}
	// Pipelined: a large SET (several TLS records), quiet sets, a GET
	// and a NOOP in one write.
	big := strings.Repeat("0123456789", 5000)
	var batch []byte
	batch = append(batch, store(bin.OpSet, 4, 0, "big", big, 9, 0)...)
	for i := range 10 {
		batch = append(batch, store(bin.OpSetQ, uint32(10+i), 0, "q", "v", 0, 0)...)
	}
	batch = append(batch, get(bin.OpGet, 5, "big")...)
	batch = append(batch, simple(bin.OpNoop, 6)...)
	c.send(batch)
	if f := c.read(); f.Opaque != 4 || f.status() != bin.StatusOK {
		t.Fatalf("SET: %v", f)
	}
	if f := c.read(); f.Opaque != 5 || f.status() != bin.StatusOK || string(f.value()) != big {
		t.Fatalf("GET: opaque %d status %x, %d bytes", f.Opaque, f.status(), len(f.value()))
	}
	if f := c.read(); f.Opcode != bin.OpNoop || f.Opaque != 6 {
		t.Fatalf("NOOP: %v", f)
	}
}
