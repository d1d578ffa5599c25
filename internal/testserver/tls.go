package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a certificate authority and the certificates the TLS tests use,
// generated for one test and written as PEM files (keys in PKCS#8) in
// its temporary directory. The server certificates are for 127.0.0.1.
type PKI struct {
	// Dir holds the files.
	Dir string
	// CACert is the CA's certificate (ssl_ca_cert), CA its parsed form
	// and Pool a pool that holds it.
	CACert string
	CA     *x509.Certificate
	Pool   *x509.CertPool
	// ServerCert and ServerKey are a server certificate and its key
	// (ssl_chain_cert, ssl_key); ServerKeyDER is the key in DER
	// (ssl_keyformat=2). Server2Cert and Server2Key are a second one
	// (another serial number), for certificate swaps.
	ServerCert, ServerKey, ServerKeyDER string
	Server2Cert, Server2Key             string
	ServerSerial, Server2Serial         *big.Int
	// Client is a client certificate the CA signed; Stranger one signed
	// by another CA.
	Client, Stranger tls.Certificate
}

// NewPKI generates a PKI in a new temporary directory of t's.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), Pool: x509.NewCertPool()}
	caKey, ca := newCA(t, "mnemo test CA")
	p.CA = ca
	p.Pool.AddCert(ca)
	p.CACert = p.write(t, "ca.pem", pemCert(ca.Raw))
	p.ServerSerial, p.Server2Serial = big.NewInt(1001), big.NewInt(1002)
	for i, serial := range []*big.Int{p.ServerSerial, p.Server2Serial} {
		der, key := newLeaf(t, ca, caKey, serial, x509.ExtKeyUsageServerAuth)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		name := []string{"server", "server2"}[i]
		cert := p.write(t, name+".pem", pemCert(der))
		keyPath := p.write(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
		if i == 0 {
			p.ServerCert, p.ServerKey = cert, keyPath
			p.ServerKeyDER = p.write(t, name+".der", keyDER)
		} else {
			p.Server2Cert, p.Server2Key = cert, keyPath
		}
	}
	der, key := newLeaf(t, ca, caKey, big.NewInt(2001), x509.ExtKeyUsageClientAuth)
	p.Client = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	strangerKey, stranger := newCA(t, "stranger CA")
	der, key = newLeaf(t, stranger, strangerKey, big.NewInt(3001), x509.ExtKeyUsageClientAuth)
	p.Stranger = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return p
}

// ClientConfig returns a client configuration that trusts the CA.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1"}
}

// ServerFlags returns the mnemo or memcached flags that turn TLS on with
// the server certificate, extra appended to the -o list.
func (p *PKI) ServerFlags(extra string) []string {
	o := "ssl_chain_cert=" + p.ServerCert + ",ssl_key=" + p.ServerKey
	if extra != "" {
		o += "," + extra
	}
	return []string{"-Z", "-o", o}
}

// DialTLS opens a TLS connection to addr with config (ClientConfig when
// nil), completing the handshake; every read and write waits at most
// Patience.
func DialTLS(t testing.TB, addr string, config *tls.Config) (*tls.Conn, error) {
	t.Helper()
	if config == nil {
		config = &tls.Config{}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: Patience}, Config: config}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*tls.Conn)
	return tc, nil
}

func (p *PKI) write(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newCA(t testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func newLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial *big.Int, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mnemo test " + serial.String()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}
