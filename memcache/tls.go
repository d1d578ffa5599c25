package memcache

import (
	"strconv"
	"time"

	"github.com/mnemo-cache/mnemo/protocol/text"
	"github.com/mnemo-cache/mnemo/server"
)

// TLS is what the memcached application needs of the server's TLS
// (memcached -Z): the refresh_certs command and the TLS lines of stats.
// The daemon implements it; Config.TLS is nil without -Z.
type TLS interface {
	// RefreshCerts reloads the certificate chain, the key and the CA
	// certificates from their files. On failure the ones in use stay,
	// and the error's text is memcached's reply ("Error loading the
	// certificate chain: <path> : <reason>").
	RefreshCerts() error
	// LastCertRefresh returns when the certificates were last loaded
	// (at start or by RefreshCerts).
	LastCertRefresh() time.Time
	// NewSessions returns the count of TLS sessions created, and false
	// when -o ssl_session_cache is off (memcached then has no such
	// line).
	NewSessions() (uint64, bool)
}

// tlsNotEnabled is memcached's reply to refresh_certs without -Z.
const tlsNotEnabled = "Error TLS not enabled\r\n"

// refreshCerts answers refresh_certs as memcached does: OK (unless
// noreply), or the reason the certificates could not be loaded (sent even
// with noreply), the old ones staying in use.
func (s *session) refreshCerts(c *server.Conn, r *text.Request) {
	t := s.h.cfg.TLS
	if t == nil {
		c.Out = append(c.Out, tlsNotEnabled...)
		return
	}
	if err := t.RefreshCerts(); err != nil {
		s.h.cfg.Logger.Warn("refresh_certs failed; the certificates in use stay", "err", err)
		c.Out = append(c.Out, err.Error()...)
		c.Out = append(c.Out, "\r\n"...)
		return
	}
	s.reply(c, r, text.OK)
}

// tlsStats writes the TLS lines of memcached's general stats, where it
// writes them (after the logger's figures, before the item figures), and
// only with -Z: ssl_new_sessions (with -o ssl_session_cache),
// ssl_handshake_errors and time_since_server_cert_refresh.
func (h *Handler) tlsStats(st server.Stats, add func(name, value string)) {
	t := h.cfg.TLS
	if t == nil {
		return
	}
	if n, ok := t.NewSessions(); ok {
		add("ssl_new_sessions", strconv.FormatUint(n, 10))
	}
	add("ssl_handshake_errors", strconv.FormatUint(st.TLSHandshakeErrors, 10))
	since := max(time.Since(t.LastCertRefresh()), 0)
	add("time_since_server_cert_refresh", strconv.FormatInt(int64(since/time.Second), 10))
}
