package daemon

import (
	"regexp"
	"strings"
	"testing"
)

// TestVerboseLines: the binary started with -vv writes memcached's
// command and reply lines to stderr, and the verbosity command turns
// them off and on at run time.
func TestVerboseLines(t *testing.T) {
	p, addr := serving(t, append(asUser(), "-vv")...)
	c := dialAddr(t, addr)
	if got := c.do("set foo 0 0 1\r\nx\r\n", anyLine); got[0] != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	c.do("get foo\r\n", isEnd)
	for _, l := range []string{" new auto-negotiating client connection\n", ": Client using the ascii protocol\n",
		" set foo 0 0 1\n", " STORED\n", " get foo\n", " sending key foo\n", " END\n"} {
		p.waitLog(l)
	}
	id := regexp.MustCompile(`(?m)^<([0-9]+) get foo$`).FindStringSubmatch(p.out.String())
	if id == nil {
		t.Fatalf("no \"<ID get foo\" line in:\n%s", p.out.String())
	}
	for _, l := range []string{"<" + id[1] + " set foo 0 0 1\n", ">" + id[1] + " STORED\n", ">" + id[1] + " sending key foo\n", ">" + id[1] + " END\n"} {
		if !strings.Contains(p.out.String(), l) {
			t.Errorf("no %q line in:\n%s", l, p.out.String())
		}
	}
	// verbosity 0 turns the lines off: the version reply after it is not
	// logged, the one after verbosity 2 is.
	c.do("verbosity 0\r\n", anyLine)
	c.do("version\r\n", anyLine)
	c.do("verbosity 2\r\n", anyLine)
	c.do("mn\r\n", anyLine)
	p.waitLog(">" + id[1] + " MN\n")
	if strings.Contains(p.out.String(), "<"+id[1]+" version\n") {
		t.Errorf("a command after verbosity 0 was logged:\n%s", p.out.String())
	}
}

// TestWatchDisabledFlag: -W refuses watch with memcached's words; without
// it, watch answers OK.
func TestWatchDisabledFlag(t *testing.T) {
	_, addr := serving(t, append(asUser(), "-W")...)
	c := dialAddr(t, addr)
	if got := c.do("watch\r\n", anyLine); got[0] != "CLIENT_ERROR watch commands not allowed\r\n" {
		t.Errorf("watch with -W: %q", got)
	}
	_, addr = serving(t, asUser()...)
	c = dialAddr(t, addr)
	if got := c.do("watch mutations\r\n", anyLine); got[0] != "OK\r\n" {
		t.Errorf("watch: %q", got)
	}
}
