package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// TLS (-Z and -o ssl_*)
//
// Mnemo serves TLS with Go's crypto/tls. The options keep memcached
// 1.6.18's meaning where Go can give it, and say so where it cannot:
//
//	option              mnemo
//	ssl_chain_cert      PEM certificate chain (required with -Z)
//	ssl_key             private key (required with -Z; may be the chain's file)
//	ssl_keyformat       1 PEM (default) or 2 DER (ASN.1); other values are
//	                    refused at start, as OpenSSL refuses them ("bad ssl
//	                    filetype"): OpenSSL engines do not exist in Go
//	ssl_verify_mode     0 none, 1 request (verify if given), 2 require,
//	                    3 once (the same as 2: renegotiation is off in both
//	                    servers, so a certificate is only ever asked once)
//	ssl_ca_cert         PEM CAs that sign client certificates; without it a
//	                    client certificate never verifies (OpenSSL's empty
//	                    store), never the system roots
//	ssl_ciphers         OpenSSL cipher string for TLS 1.2 and older, mapped
//	                    onto Go's suites (see TLSCipherSuites); TLS 1.3
//	                    suites are not configurable, as in memcached
//	ssl_min_version     0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2 (default), 3 TLS 1.3
//	ssl_session_cache   counts new sessions (stats ssl_new_sessions);
//	                    resumption works with or without it, by session
//	                    tickets, as with memcached (OpenSSL issues tickets
//	                    either way). Go has no server-side cache of session
//	                    IDs, so a TLS 1.2 client without ticket support does
//	                    a full handshake every time.
//	ssl_kernel_tls      accepted and shown; Go's crypto/tls has no kernel
//	                    offload, so TLS stays in user space (OpenSSL also
//	                    falls back to user space where the kernel cannot
//	                    take it); the daemon logs a warning
//	ssl_wbuf_size       accepted and shown, no effect: replies are written
//	                    from the connection's reply buffer, in records of
//	                    up to 16 KiB

// TLSKeyFormat values of -o ssl_keyformat (OpenSSL's SSL_FILETYPE_*).
const (
	KeyFormatPEM = 1
	KeyFormatDER = 2
)

// TLSVersion returns the crypto/tls version of -o ssl_min_version.
func (t TLSOptions) TLSVersion() uint16 {
	switch t.MinVersion {
	case 0:
		return tls.VersionTLS10
	case 1:
		return tls.VersionTLS11
	case 3:
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// ClientAuth returns the crypto/tls policy of -o ssl_verify_mode. Modes 1
// to 3 ask for a certificate without letting crypto/tls verify it (it
// would check against a CA pool fixed at start); the server verifies it
// against the current ssl_ca_cert (which refresh_certs reloads) in
// tls.Config.VerifyConnection. Mode 1 asks and accepts none; 2 and 3
// require one.
func (t TLSOptions) ClientAuth() tls.ClientAuthType {
	switch t.VerifyMode {
	case 1:
		return tls.RequestClientCert
	case 2, 3:
		return tls.RequireAnyClientCert
	}
	return tls.NoClientCert
}

// TLSWarnings returns what the daemon should log about the TLS options at
// start: the ones Go cannot honour in full. It is empty without -Z.
func (c *Config) TLSWarnings() []string {
	if !c.TLS {
		return nil
	}
	t := c.TLSOptions
	var w []string
	if t.KernelTLS {
		w = append(w, "ssl_kernel_tls: Go's crypto/tls has no kernel TLS offload; TLS runs in user space")
	}
	if t.MinVersion < 2 {
		w = append(w, fmt.Sprintf("ssl_min_version=%d: %s is deprecated (RFC 8996); it is accepted as asked", t.MinVersion, tlsVersionText(t.MinVersion)))
	}
	if t.Ciphers != "" {
		_, cw, _ := TLSCipherSuites(t.Ciphers)
		w = append(w, cw...)
	}
	return w
}

// validateTLS checks the TLS options that memcached checks at start
// (ssl_init), in its words. The files are read by the daemon.
func (c *Config) validateTLS(bad func(flag, format string, args ...any)) {
	if !c.TLS {
		return
	}
	t := c.TLSOptions
	if c.Port == 0 {
		bad("-Z", "you cannot enable TLS without a TCP port")
	}
	if t.Ciphers != "" {
		if _, _, err := TLSCipherSuites(t.Ciphers); err != nil {
			bad("-o ssl_ciphers", "%v", err)
		}
	}
}

// goSuite is one TLS 1.0-1.2 cipher suite crypto/tls implements, with
// OpenSSL's name for it and the attributes OpenSSL's cipher-string
// aliases select on.
type goSuite struct {
	id      uint16
	openssl string
	kx      string // "kRSA" or "kECDHE"
	au      string // "aRSA" or "aECDSA"
	enc     string // "AES128", "AES256", "AESGCM128", "AESGCM256", "CHACHA20", "3DES", "RC4"
	mac     string // "SHA1", "SHA256", "SHA384" or "AEAD"
	tls12   bool   // defined by TLS 1.2 (OpenSSL's TLSv1.2 alias)
}

// goSuites is every TLS 1.2-and-older suite of crypto/tls (secure and
// insecure), under OpenSSL's names.
var goSuites = []goSuite{
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", "kECDHE", "aECDSA", "AESGCM128", "AEAD", true},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256", "kECDHE", "aRSA", "AESGCM128", "AEAD", true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384", "kECDHE", "aECDSA", "AESGCM256", "AEAD", true},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384", "kECDHE", "aRSA", "AESGCM256", "AEAD", true},
	{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305", "kECDHE", "aECDSA", "CHACHA20", "AEAD", true},
	{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305", "kECDHE", "aRSA", "CHACHA20", "AEAD", true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "ECDHE-ECDSA-AES128-SHA256", "kECDHE", "aECDSA", "AES128", "SHA256", true},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "ECDHE-RSA-AES128-SHA256", "kECDHE", "aRSA", "AES128", "SHA256", true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA", "kECDHE", "aECDSA", "AES128", "SHA1", false},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA", "kECDHE", "aRSA", "AES128", "SHA1", false},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA", "kECDHE", "aECDSA", "AES256", "SHA1", false},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA", "kECDHE", "aRSA", "AES256", "SHA1", false},
	{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256", "kRSA", "aRSA", "AESGCM128", "AEAD", true},
	{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384", "kRSA", "aRSA", "AESGCM256", "AEAD", true},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA256, "AES128-SHA256", "kRSA", "aRSA", "AES128", "SHA256", true},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA", "kRSA", "aRSA", "AES128", "SHA1", false},
	{tls.TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA", "kRSA", "aRSA", "AES256", "SHA1", false},
	{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, "ECDHE-RSA-DES-CBC3-SHA", "kECDHE", "aRSA", "3DES", "SHA1", false},
	{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "DES-CBC3-SHA", "kRSA", "aRSA", "3DES", "SHA1", false},
	{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, "ECDHE-ECDSA-RC4-SHA", "kECDHE", "aECDSA", "RC4", "SHA1", false},
	{tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, "ECDHE-RSA-RC4-SHA", "kECDHE", "aRSA", "RC4", "SHA1", false},
	{tls.TLS_RSA_WITH_RC4_128_SHA, "RC4-SHA", "kRSA", "aRSA", "RC4", "SHA1", false},
}

// goDefaultSuite reports whether crypto/tls uses id when no suites are
// configured: the suites it does not call insecure (OpenSSL's DEFAULT
// maps onto Go's defaults).
func goDefaultSuite(id uint16) bool {
	return slices.ContainsFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.ID == id })
}

// matches reports whether s is selected by one alias or cipher name of
// OpenSSL's cipher-string language.
func (s goSuite) matches(word string) bool {
	switch word {
	case s.openssl:
		return true
	case "ALL":
		return true
	case "DEFAULT":
		return goDefaultSuite(s.id)
	case "COMPLEMENTOFDEFAULT":
		return !goDefaultSuite(s.id)
	case "HIGH":
		return s.enc != "3DES" && s.enc != "RC4"
	case "MEDIUM":
		return s.enc == "3DES" || s.enc == "RC4"
	case "kRSA", "RSA":
		return s.kx == "kRSA"
	case "aRSA":
		return s.au == "aRSA"
	case "kECDHE", "kEECDH", "ECDHE", "EECDH":
		return s.kx == "kECDHE"
	case "aECDSA", "ECDSA":
		return s.au == "aECDSA"
	case "AES":
		return strings.HasPrefix(s.enc, "AES")
	case "AES128":
		return s.enc == "AES128" || s.enc == "AESGCM128"
	case "AES256":
		return s.enc == "AES256" || s.enc == "AESGCM256"
	case "AESGCM":
		return strings.HasPrefix(s.enc, "AESGCM")
	case "CHACHA20":
		return s.enc == "CHACHA20"
	case "3DES":
		return s.enc == "3DES"
	case "RC4":
		return s.enc == "RC4"
	case "SHA1", "SHA":
		return s.mac == "SHA1"
	case "SHA256":
		return s.mac == "SHA256"
	case "SHA384":
		return s.mac == "SHA384"
	case "TLSv1.2":
		return s.tls12
	case "TLSv1", "TLSv1.0", "SSLv3":
		return !s.tls12
	}
	return false
}

// TLSCipherSuites maps an OpenSSL cipher string (-o ssl_ciphers) onto
// crypto/tls suite IDs. It follows OpenSSL's language: terms separated by
// ':', ',' or spaces; a term is a cipher name or an alias (ALL, DEFAULT,
// HIGH, MEDIUM, kRSA, aRSA, ECDHE, ECDSA, AES, AES128, AES256, AESGCM,
// CHACHA20, 3DES, RC4, SHA1, SHA256, SHA384, TLSv1.2, TLSv1 and their
// OpenSSL synonyms), several joined by '+' select what all of them
// select; a term prefixed '!' removes its ciphers for good, '-' removes
// them until a later term adds them again, '+' only reorders. Order does
// not matter: crypto/tls picks among the enabled suites by its own
// preference. DEFAULT means Go's default suites.
//
// A term that selects none of Go's suites (OpenSSL ciphers Go does not
// implement, such as DHE, CCM, CAMELLIA or ARIA, and names neither knows)
// is ignored, as OpenSSL ignores names it does not know, with a warning.
// @STRENGTH is ignored (ordering); @SECLEVEL=n is ignored with a warning.
// When nothing is left it fails with memcached's message: OpenSSL fails
// the same way when no TLS 1.2 cipher matches.
func TLSCipherSuites(s string) (ids []uint16, warnings []string, err error) {
	in := make([]bool, len(goSuites))     // enabled now
	killed := make([]bool, len(goSuites)) // removed by '!'
	var unmatched []string
	terms := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' })
	for _, term := range terms {
		op := byte(0)
		if term[0] == '!' || term[0] == '-' || term[0] == '+' {
			op, term = term[0], term[1:]
		}
		switch {
		case term == "@STRENGTH" || term == "":
			continue
		case strings.HasPrefix(term, "@SECLEVEL="):
			warnings = append(warnings, fmt.Sprintf("ssl_ciphers: %s ignored: crypto/tls has no security levels", term))
			continue
		}
		words := strings.Split(term, "+")
		any := false
		for i, g := range goSuites {
			all := true
			for _, w := range words {
				if !g.matches(w) {
					all = false
					break
				}
			}
			if !all {
				continue
			}
			any = true
			switch op {
			case '!':
				killed[i], in[i] = true, false
			case '-':
				in[i] = false
			case '+':
				// Reordering only.
			default:
				if !killed[i] {
					in[i] = true
				}
			}
		}
		if !any && op == 0 {
			unmatched = append(unmatched, term)
		}
	}
	for i, g := range goSuites {
		if in[i] {
			ids = append(ids, g.id)
		}
	}
	for _, u := range unmatched {
		warnings = append(warnings, fmt.Sprintf("ssl_ciphers: %q matches no cipher suite of Go's crypto/tls; ignored", u))
	}
	if len(ids) == 0 {
		return nil, warnings, fmt.Errorf("Error setting the provided cipher(s): %s (none of them is a TLS 1.2 cipher suite that Go's crypto/tls implements)", s)
	}
	return ids, warnings, nil
}

// TLSCipherNames returns OpenSSL's names of the suites ids, for logs and
// tests.
func TLSCipherNames(ids []uint16) []string {
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		for _, g := range goSuites {
			if g.id == id {
				names = append(names, g.openssl)
			}
		}
	}
	return names
}
