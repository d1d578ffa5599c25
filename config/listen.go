package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one TCP listener, parsed from a -l entry.
type Listener struct {
	// Addr is host:port for net.Listen("tcp", Addr). The host is empty for
	// every interface (-l '*'); the port is the entry's own or Config.Port.
	Addr string
	// Protocol forces this listener's protocol ("auto", "ascii" or
	// "binary", from a proto[...] prefix); empty means Config.Protocol.
	Protocol string
	// Tag is the listener's tag (tag[...] prefix, 1 to 8 bytes), or "".
	Tag string
	// NoTLS exempts the listener from TLS (notls: prefix).
	NoTLS bool
}

// Network is the network to listen on for l.Addr: "tcp4" for an IPv4
// literal (-l 0.0.0.0 takes IPv4 only, as in memcached, where Go's "tcp"
// would listen dual-stack on [::]), "tcp" otherwise.
func (l Listener) Network() string {
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return "tcp"
	}
	if ip := net.ParseIP(host); ip != nil && !strings.Contains(host, ":") && ip.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

// Listeners parses the -l entries (DefaultListen when there are none) in
// memcached 1.6.18's forms, each optionally preceded by prefixes in this
// order:
//
//	notls:                 no TLS on this listener (only valid with -Z)
//	proto[ascii|binary|negotiating|auto]:   this listener's protocol
//	tag[name]:             a listener tag of 1 to 8 bytes
//
// and then the address:
//
//	127.0.0.1              host, port from -p
//	127.0.0.1:11300        host and port
//	localhost:11300        host names too
//	[::1]  [::1]:11300     IPv6, bracketed, with or without a port
//	::1                    IPv6 without brackets and without a port
//	*  *:11300             every interface
//
// A port of 0 in an entry asks the kernel for a free port. It returns nil
// when TCP is off: with -s (a unix socket disables the network, as in
// memcached) or with -p 0 (memcached then opens no TCP listener at all,
// whatever the entries say).
func (c *Config) Listeners() ([]Listener, error) {
	if c.UnixSocket != "" || c.Port == 0 {
		return nil, nil
	}
	entries := c.Listen
	if len(entries) == 0 {
		entries = []string{DefaultListen}
	}
	ls := make([]Listener, 0, len(entries))
	for _, e := range entries {
		l, err := parseListen(e, c.Port)
		if err != nil {
			return nil, &Error{Flag: "-l", Msg: err.Error(), Err: ErrInvalid}
		}
		if l.NoTLS && !c.TLS {
			return nil, &Error{Flag: "-l", Msg: fmt.Sprintf("%q: 'notls' option is valid only when TLS is enabled (-Z)", e), Err: ErrInvalid}
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// ListenAddrs returns the host:port of each TCP listener (see Listeners),
// or nil when TCP is off or a -l entry is malformed (Validate reports it).
func (c *Config) ListenAddrs() []string {
	ls, err := c.Listeners()
	if err != nil || len(ls) == 0 {
		return nil
	}
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.Addr
	}
	return addrs
}

// cutBracket cuts "name[value]:rest" after the given prefix.
func cutBracket(s, prefix string) (value, rest string, ok bool, err error) {
	if !strings.HasPrefix(s, prefix+"[") {
		return "", s, false, nil
	}
	body := s[len(prefix)+1:]
	end := strings.IndexByte(body, ']')
	if end < 0 {
		return "", s, false, fmt.Errorf("%q: missing ']' after %s[", s, prefix)
	}
	value, rest = body[:end], body[end+1:]
	if !strings.HasPrefix(rest, ":") {
		return "", s, false, fmt.Errorf("%q: expected ':' after %s[%s]", s, prefix, value)
	}
	return value, rest[1:], true, nil
}

func parseListen(e string, port int) (Listener, error) {
	var l Listener
	p := e
	if rest, ok := strings.CutPrefix(p, "notls:"); ok {
		l.NoTLS, p = true, rest
	}
	proto, rest, ok, err := cutBracket(p, "proto")
	if err != nil {
		return l, err
	}
	if ok {
		switch proto {
		case "ascii", "binary":
			l.Protocol = proto
		case "negotiating", "auto":
			l.Protocol = "auto"
		default:
			return l, fmt.Errorf("%q: unknown protocol %q (ascii, binary, negotiating)", e, proto)
		}
		p = rest
	}
	tag, rest, ok, err := cutBracket(p, "tag")
	if err != nil {
		return l, err
	}
	if ok {
		if len(tag) < 1 || len(tag) > 8 {
			return l, fmt.Errorf("%q: listener tags must be between 1 and 8 characters", e)
		}
		l.Tag, p = tag, rest
	}

	host, portStr := p, ""
	if strings.HasPrefix(p, "[") {
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return l, fmt.Errorf("%q: invalid IPv6 address", e)
		}
		host, rest = p[1:end], p[end+1:]
		if rest != "" {
			after, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return l, fmt.Errorf("%q: unexpected %q after IPv6 address", e, rest)
			}
			portStr = after
			if portStr == "" {
				return l, fmt.Errorf("%q: missing port", e)
			}
		}
	} else if i := strings.IndexByte(p, ':'); i >= 0 && strings.Count(p, ":") == 1 {
		host, portStr = p[:i], p[i+1:]
		if portStr == "" {
			return l, fmt.Errorf("%q: missing port", e)
		}
	}
	if host == "" {
		return l, fmt.Errorf("%q: empty host (use * for every interface)", e)
	}
	if host == "*" {
		host = ""
	}
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 0 || n > 65535 {
			return l, fmt.Errorf("%q: invalid port number %q", e, portStr)
		}
		port = n
	}
	l.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	return l, nil
}
