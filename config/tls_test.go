package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestTLSCipherSuites(t *testing.T) {
	tests := []struct {
		in       string
		want     []string // OpenSSL names, in goSuites order
		warnings []string // substrings, in order
		err      string
	}{
		{in: "ECDHE-RSA-AES128-GCM-SHA256", want: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
		{in: "ECDHE+AESGCM", want: []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"}},
		{in: "EECDH+AESGCM:EECDH+CHACHA20:!ECDSA", want: []string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"}},
		{in: "HIGH:!aNULL:!kRSA:!SHA1:!SHA256", want: []string{
			"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
			"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}},
		// '-' removes until added again, '!' for good.
		{in: "AES128-SHA:-AES128-SHA:AES128-SHA", want: []string{"AES128-SHA"}},
		{in: "!AES128-SHA:AES128-SHA:AES256-SHA", want: []string{"AES256-SHA"}},
		{in: "kRSA+AES256 AES128-SHA256,@STRENGTH", want: []string{"AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA"}},
		{in: "DEFAULT:!ECDSA:!SHA1", want: []string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"}},
		// OpenSSL names Go does not implement are dropped with a warning.
		{in: "DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:FOO", want: []string{"ECDHE-ECDSA-AES256-GCM-SHA384"},
			warnings: []string{`"DHE-RSA-AES128-GCM-SHA256" matches no cipher suite`, `"FOO" matches no`}},
		{in: "@SECLEVEL=2:HIGH+ECDSA+SHA1", want: []string{"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"}, warnings: []string{"@SECLEVEL=2 ignored"}},
		// Nothing left: memcached's error (OpenSSL fails alike).
		{in: "FOO", err: "Error setting the provided cipher(s): FOO", warnings: []string{`"FOO"`}},
		{in: "TLS_AES_128_GCM_SHA256", err: "Error setting the provided cipher(s): TLS_AES_128_GCM_SHA256"},
		{in: "DHE-RSA-AES256-GCM-SHA384:CAMELLIA", err: "none of them is a TLS 1.2 cipher suite that Go's crypto/tls implements"},
		{in: "ALL:!ALL", err: "Error setting"},
	}
	for _, tt := range tests {
		ids, warnings, err := TLSCipherSuites(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("TLSCipherSuites(%q) error = %v, want %q", tt.in, err, tt.err)
			}
		} else if err != nil {
			t.Errorf("TLSCipherSuites(%q) error = %v", tt.in, err)
		}
		if got := TLSCipherNames(ids); !slices.Equal(got, tt.want) {
			t.Errorf("TLSCipherSuites(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.err != "" && tt.warnings == nil {
			continue
		}
		if len(warnings) != len(tt.warnings) {
			t.Errorf("TLSCipherSuites(%q) warnings = %q, want %q", tt.in, warnings, tt.warnings)
			continue
		}
		for i, w := range tt.warnings {
			if !strings.Contains(warnings[i], w) {
				t.Errorf("TLSCipherSuites(%q) warning %d = %q, want %q", tt.in, i, warnings[i], w)
			}
		}
	}
}

// TestGoSuitesAreGos checks the table against crypto/tls: every suite it
// names exists there, and it names every TLS 1.2 suite crypto/tls has.
func TestGoSuitesAreGos(t *testing.T) {
	var all []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Equal(s.SupportedVersions, []uint16{tls.VersionTLS13}) {
			all = append(all, s.ID)
		}
	}
	var table []uint16
	for _, g := range goSuites {
		table = append(table, g.id)
	}
	slices.Sort(all)
	slices.Sort(table)
	if !slices.Equal(all, table) {
		t.Errorf("goSuites = %v, crypto/tls has %v", table, all)
	}
	ids, _, err := TLSCipherSuites("DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tls.CipherSuites() {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS13) && !slices.Contains(ids, s.ID) {
			t.Errorf("DEFAULT lacks Go's default %s", s.Name)
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if slices.Contains(ids, s.ID) {
			t.Errorf("DEFAULT has insecure %s", s.Name)
		}
	}
}

func TestTLSValidate(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for valid
	}{
		{[]string{"-Z", "-o", "ssl_ciphers=HIGH"}, ""},
		{[]string{"-Z", "-o", "ssl_ciphers=FOO"}, "-o ssl_ciphers: Error setting the provided cipher(s): FOO"},
		{[]string{"-o", "ssl_ciphers=FOO"}, ""}, // memcached checks it only with -Z
		{[]string{"-Z", "-p", "0"}, "-Z: you cannot enable TLS without a TCP port"},
		{[]string{"-Z", "-o", "ssl_keyformat=7"}, ""}, // refused when the key is loaded
	}
	for _, tt := range tests {
		err := mustParse(t, tt.args...).Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: Validate() = %v", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: Validate() = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestTLSOptionMeanings(t *testing.T) {
	for mode, want := range []tls.ClientAuthType{tls.NoClientCert, tls.RequestClientCert, tls.RequireAnyClientCert, tls.RequireAnyClientCert} {
		if got := (TLSOptions{VerifyMode: mode}).ClientAuth(); got != want {
			t.Errorf("ssl_verify_mode=%d: ClientAuth() = %v, want %v", mode, got, want)
		}
	}
	for v, want := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		if got := (TLSOptions{MinVersion: v}).TLSVersion(); got != want {
			t.Errorf("ssl_min_version=%d: TLSVersion() = %x, want %x", v, got, want)
		}
	}
	if got := Default().TLSOptions.TLSVersion(); got != tls.VersionTLS12 {
		t.Errorf("default ssl_min_version = %x, want TLS 1.2", got)
	}

	if w := mustParse(t, "-o", "ssl_kernel_tls,ssl_min_version=0").TLSWarnings(); w != nil {
		t.Errorf("TLSWarnings() without -Z = %q", w)
	}
	w := mustParse(t, "-Z", "-o", "ssl_kernel_tls,ssl_min_version=1,ssl_ciphers=HIGH:DHE-RSA-AES128-SHA").TLSWarnings()
	want := []string{"ssl_kernel_tls: Go's crypto/tls has no kernel TLS offload", "ssl_min_version=1: tlsv1.1 is deprecated", `"DHE-RSA-AES128-SHA" matches no cipher suite`}
	if len(w) != len(want) {
		t.Fatalf("TLSWarnings() = %q, want %q", w, want)
	}
	for i := range want {
		if !strings.Contains(w[i], want[i]) {
			t.Errorf("TLSWarnings()[%d] = %q, want %q", i, w[i], want[i])
		}
	}
}
