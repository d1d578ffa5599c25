package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestListeners(t *testing.T) {
	tests := []struct {
		entry string
		want  Listener
	}{
		{"127.0.0.1", Listener{Addr: "127.0.0.1:11211"}},
		{"127.0.0.1:11300", Listener{Addr: "127.0.0.1:11300"}},
		{"127.0.0.1:0", Listener{Addr: "127.0.0.1:0"}},
		{"localhost", Listener{Addr: "localhost:11211"}},
		{"localhost:5", Listener{Addr: "localhost:5"}},
		{"[::1]", Listener{Addr: "[::1]:11211"}},
		{"[::1]:11300", Listener{Addr: "[::1]:11300"}},
		{"::1", Listener{Addr: "[::1]:11211"}},
		{"fe80::1:2", Listener{Addr: "[fe80::1:2]:11211"}},
		{"*", Listener{Addr: ":11211"}},
		{"*:11300", Listener{Addr: ":11300"}},
		{"[*]:7", Listener{Addr: ":7"}},
		{"proto[ascii]:127.0.0.1:7", Listener{Addr: "127.0.0.1:7", Protocol: "ascii"}},
		{"proto[binary]:[::1]", Listener{Addr: "[::1]:11211", Protocol: "binary"}},
		{"proto[negotiating]:127.0.0.1", Listener{Addr: "127.0.0.1:11211", Protocol: "auto"}},
		{"proto[auto]:127.0.0.1", Listener{Addr: "127.0.0.1:11211", Protocol: "auto"}},
		{"tag[web]:127.0.0.1", Listener{Addr: "127.0.0.1:11211", Tag: "web"}},
		{"proto[ascii]:tag[12345678]:127.0.0.1:9", Listener{Addr: "127.0.0.1:9", Protocol: "ascii", Tag: "12345678"}},
		{"notls:127.0.0.1:9", Listener{Addr: "127.0.0.1:9", NoTLS: true}},
		{"notls:proto[binary]:tag[t]:*:9", Listener{Addr: ":9", Protocol: "binary", Tag: "t", NoTLS: true}},
		{"prototype.example:9", Listener{Addr: "prototype.example:9"}},
	}
	for _, tt := range tests {
		c := Default()
		c.TLS = true // allow notls
		c.Listen = []string{tt.entry}
		ls, err := c.Listeners()
		if err != nil {
			t.Errorf("%q: %v", tt.entry, err)
			continue
		}
		if len(ls) != 1 || ls[0] != tt.want {
			t.Errorf("%q: Listeners() = %+v, want %+v", tt.entry, ls, tt.want)
		}
	}
}

func TestListenersErrors(t *testing.T) {
	for _, tt := range []struct{ entry, want string }{
		{"[::1", "invalid IPv6 address"},
		{"[::1]x", "unexpected \"x\" after IPv6 address"},
		{"[::1]:", "missing port"},
		{"127.0.0.1:", "missing port"},
		{"127.0.0.1:x", "invalid port number \"x\""},
		{"127.0.0.1:65536", "invalid port number"},
		{"127.0.0.1:-1", "invalid port number"},
		{":11211", "empty host"},
		{"[]:5", "empty host"},
		{"proto[http]:127.0.0.1", "unknown protocol \"http\""},
		{"proto[ascii", "missing ']'"},
		{"proto[ascii]127.0.0.1", "expected ':'"},
		{"tag[]:127.0.0.1", "between 1 and 8"},
		{"tag[123456789]:127.0.0.1", "between 1 and 8"},
		{"notls:127.0.0.1", "'notls' option is valid only when TLS is enabled"},
	} {
		c := Default()
		c.Listen = []string{tt.entry}
		_, err := c.Listeners()
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: Listeners() error = %v, want %q", tt.entry, err, tt.want)
		}
		if addrs := c.ListenAddrs(); addrs != nil {
			t.Errorf("%q: ListenAddrs() = %q, want nil", tt.entry, addrs)
		}
	}
}

func TestListenerNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:11211":        "tcp4",
		"127.0.0.1:0":          "tcp4",
		":11211":               "tcp",
		"[::]:11211":           "tcp",
		"[::1]:5":              "tcp",
		"[::ffff:127.0.0.1]:5": "tcp",
		"localhost:11211":      "tcp",
		"not an address":       "tcp",
	} {
		if got := (Listener{Addr: addr}).Network(); got != want {
			t.Errorf("Listener{Addr: %q}.Network() = %q, want %q", addr, got, want)
		}
	}
}

func TestListenAddrs(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"127.0.0.1:11211"}},
		{[]string{"-p", "11300"}, []string{"127.0.0.1:11300"}},
		{[]string{"-l", "127.0.0.2"}, []string{"127.0.0.2:11211"}},
		{[]string{"-p", "5", "-l", "127.0.0.1,[::1]:6", "-l", "*"}, []string{"127.0.0.1:5", "[::1]:6", ":5"}},
		{[]string{"-l", "127.0.0.1:0"}, []string{"127.0.0.1:0"}},
		// -U without -p moves TCP to the UDP port, as in memcached.
		{[]string{"-U", "11400"}, []string{"127.0.0.1:11400"}},
		// A unix socket disables the network; so does -p 0.
		{[]string{"-s", "/tmp/m.sock"}, nil},
		{[]string{"-s", "/tmp/m.sock", "-l", "127.0.0.1:5"}, nil},
		{[]string{"-p", "0"}, nil},
		{[]string{"-p", "0", "-l", "127.0.0.1:5"}, nil},
	}
	for _, tt := range tests {
		got := mustParse(t, tt.args...).ListenAddrs()
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: ListenAddrs() = %q, want %q", tt.args, got, tt.want)
		}
	}
}
