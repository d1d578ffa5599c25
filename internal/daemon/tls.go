package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-cache/mnemo/config"
	"github.com/mnemo-cache/mnemo/memcache"
)

// tlsCerts is the server's TLS (-Z): the tls.Config every TLS listener
// serves, built from the -o ssl_* options, and the certificate, key and
// client CAs behind it, which refresh_certs reloads without a restart.
// The config reads them through callbacks (GetCertificate for the
// certificate, VerifyConnection for client certificates), so a reload
// applies to every handshake that starts after it; established
// connections keep what they negotiated, as in memcached.
type tlsCerts struct {
	opts   config.TLSOptions
	config *tls.Config

	cert        atomic.Pointer[tls.Certificate]
	clientCAs   atomic.Pointer[x509.CertPool] // never nil: an empty pool verifies nothing
	refreshed   atomic.Int64                  // unix nanoseconds of the last load
	newSessions atomic.Uint64                 // session tickets issued (ssl_session_cache)
	mu          sync.Mutex                    // serializes loads
}

var _ memcache.TLS = (*tlsCerts)(nil)

// certError is a failure to load the TLS files, in memcached's words
// (tls.c load_server_certificates), which both the start-up error and the
// refresh_certs reply print.
type certError struct {
	what string // "the certificate chain", "the key", "the CA certificate"
	path string
	err  error
}

func (e *certError) Error() string {
	reason := e.err.Error()
	var pe *fs.PathError
	if errors.As(e.err, &pe) {
		reason = pe.Err.Error()
	}
	path := e.path
	if path == "" {
		path = "(null)"
	}
	return "Error loading " + e.what + ": " + path + " : " + reason
}

func (e *certError) Unwrap() error { return e.err }

// newTLSCerts loads the files named by opts and builds the tls.Config.
// Its errors are memcached's start-up messages.
func newTLSCerts(opts config.TLSOptions) (*tlsCerts, error) {
	t := &tlsCerts{opts: opts}
	if err := t.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: opts.TLSVersion(),
		ClientAuth: opts.ClientAuth(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.Load(), nil
		},
	}
	if opts.Ciphers != "" {
		ids, _, err := config.TLSCipherSuites(opts.Ciphers)
		if err != nil {
			return nil, err
		}
		cfg.CipherSuites = ids
	}
	if opts.VerifyMode != 0 {
		// The CA names sent in the certificate request are those read
		// at start; the verification uses the current ones.
		if opts.CACert != "" {
			cfg.ClientCAs = t.clientCAs.Load()
		}
		cfg.VerifyConnection = t.verifyClient
	}
	if opts.SessionCache {
		cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			t.newSessions.Add(1)
			return cfg.EncryptTicket(cs, ss)
		}
	}
	t.config = cfg
	return t, nil
}

// load reads the certificate chain, the key and the CA certificates and
// puts them in use, or leaves the ones in use and returns why not.
func (t *tlsCerts) load() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.opts
	chainPEM, err := readTLSFile(o.ChainCert)
	if err != nil {
		return &certError{"the certificate chain", o.ChainCert, err}
	}
	var chain []byte
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return &certError{"the certificate chain", o.ChainCert, err}
		}
		chain = append(chain, pem.EncodeToMemory(b)...)
	}
	if chain == nil {
		return &certError{"the certificate chain", o.ChainCert, errors.New("no PEM certificate found")}
	}
	keyPath := o.Key
	if keyPath == "" {
		keyPath = o.ChainCert // mnemo: the key may be in the chain's file
	}
	keyFile, err := readTLSFile(keyPath)
	if err != nil {
		return &certError{"the key", keyPath, err}
	}
	keyDER, err := keyBytes(keyFile, o.KeyFormat)
	if err != nil {
		return &certError{"the key", keyPath, err}
	}
	cert, err := tls.X509KeyPair(chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		// The key is not the certificate's: OpenSSL's "key values
		// mismatch", which memcached reports as loading the key.
		return &certError{"the key", keyPath, err}
	}
	pool := x509.NewCertPool()
	if o.CACert != "" {
		caPEM, err := readTLSFile(o.CACert)
		if err != nil {
			return &certError{"the CA certificate", o.CACert, err}
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return &certError{"the CA certificate", o.CACert, errors.New("no certificate found")}
		}
	}
	t.cert.Store(&cert)
	t.clientCAs.Store(pool)
	t.refreshed.Store(time.Now().UnixNano())
	return nil
}

// readTLSFile reads one of the TLS files; "" is an error, as OpenSSL's
// for a NULL path.
func readTLSFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no file named")
	}
	return os.ReadFile(path)
}

// keyBytes returns the DER of the private key in b, stored in format
// (ssl_keyformat: 1 PEM, 2 DER), checking that crypto/tls can use it.
func keyBytes(b []byte, format int) ([]byte, error) {
	var der []byte
	switch format {
	case config.KeyFormatPEM:
		for rest := b; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			if blk.Type == "PRIVATE KEY" || strings.HasSuffix(blk.Type, " PRIVATE KEY") {
				der = blk.Bytes
				break
			}
		}
		if der == nil {
			return nil, errors.New("no PEM private key found")
		}
	case config.KeyFormatDER:
		der = b
	default:
		return nil, fmt.Errorf("bad ssl filetype %d (1 PEM, 2 DER)", format)
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return der, nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return der, nil
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return der, nil
	}
	return nil, errors.New("unsupported private key (want PKCS#8, PKCS#1 RSA or SEC 1 EC)")
}

// verifyClient checks a client's certificate against the current CAs
// (ssl_verify_mode 1 to 3). crypto/tls has already required one in modes
// 2 and 3; in mode 1 a client without one is accepted.
func (t *tlsCerts) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	opts := x509.VerifyOptions{
		Roots:         t.clientCAs.Load(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: failed to verify client certificate: %w", err)
	}
	return nil
}

// RefreshCerts implements memcache.TLS.
func (t *tlsCerts) RefreshCerts() error { return t.load() }

// LastCertRefresh implements memcache.TLS.
func (t *tlsCerts) LastCertRefresh() time.Time { return time.Unix(0, t.refreshed.Load()) }

// NewSessions implements memcache.TLS.
func (t *tlsCerts) NewSessions() (uint64, bool) {
	return t.newSessions.Load(), t.opts.SessionCache
}
