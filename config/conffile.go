package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// A conf file is Debian's /etc/memcached.conf format, as Debian's
// systemd-memcached-wrapper reads it, so that an operator's existing file
// works unchanged as /etc/mnemo.conf:
//
//   - a line whose first non-blank is "#" is a comment; elsewhere, a
//     "#" not preceded by a backslash starts a comment, which runs to
//     the next "#" or the end of the line (the wrapper's
//     s/(?<!\\)#[^#]*//g: in effect, to the end of the line); "\#" is a
//     literal "#";
//   - blank lines are skipped, and so are lines that begin with -d or -h:
//     the service manager keeps the server in the foreground, and a help
//     text would stop it;
//   - "logfile PATH" is skipped with a warning (the wrapper skips it too:
//     the log goes to stderr, which systemd's journal keeps);
//   - every other line begins with "-" and holds options, split into
//     words the way the wrapper's shell splits them: blanks separate
//     words, '...' and "..." quote, a backslash escapes the next
//     character (inside "...", only \ " $ ` as in sh).
//
// Where the wrapper's shell would do more than split words (variables,
// globs, command substitution, ";" or "|"), or skip a line silently (any
// other "word value" line), ReadConf fails instead: a file that means
// something else to the shell must not start a different server.

// ConfFileFlag is the long flag that reads a conf file: "mnemo
// --config-file /etc/mnemo.conf". Its options take effect where the flag
// stands, so options after it on the command line win.
const ConfFileFlag = "config-file"

// ConfLine is one line of a conf file that holds options.
type ConfLine struct {
	// Num is the line's number, from 1.
	Num int
	// Args are the line's words: "-m", "64".
	Args []string
}

// ReadConf reads a conf file from r. It returns the lines that hold
// options, and warnings for the lines it skips and the user may miss
// (logfile). An error names the line.
func ReadConf(r io.Reader) (lines []ConfLine, warnings []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // a comment line, whatever "\#" it holds
		}
		line = strings.TrimSpace(stripConfComment(line))
		if line == "" || strings.HasPrefix(line, "-d") || strings.HasPrefix(line, "-h") {
			continue
		}
		words, err := splitConfWords(line)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !strings.HasPrefix(line, "-") {
			if words[0] == "logfile" {
				warnings = append(warnings, fmt.Sprintf("conf file line %d: %q ignored: mnemo logs to stderr (under systemd, the journal)", n, line))
				continue
			}
			return nil, nil, fmt.Errorf("line %d: %q is not an option (options begin with -) nor logfile", n, words[0])
		}
		lines = append(lines, ConfLine{Num: n, Args: words})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return lines, warnings, nil
}

// stripConfComment removes what Debian's wrapper removes with
// s/(?<!\\)#[^#]*//g: each "#" not preceded (in the original line) by a
// backslash, and what follows it up to the next "#".
func stripConfComment(s string) string {
	if !strings.Contains(s, "#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '#' && (i == 0 || s[i-1] != '\\') {
			i++
			for i < len(s) && s[i] != '#' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// splitConfWords splits a line into words as sh would, refusing what sh
// would expand or treat as syntax.
func splitConfWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("backslash at the end of the line (a line continues nowhere)")
			}
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+end])
			i += 1 + end
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$', '`':
					return nil, fmt.Errorf("%q inside \"...\": the shell would expand it; use '...'", s[i])
				case '\\':
					if i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
						i++
					}
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated \" quote")
			}
			inWord = true
		case strings.IndexByte("$`;&|<>()*?[", c) >= 0, c == '~' && !inWord:
			return nil, fmt.Errorf("unquoted %q: the shell would not read it as text; quote it", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// confFileValue is --config-file: it reads the file and parses its lines
// into the Config at once, with a FlagSet of its own that the parse
// state keeps (for Changed).
type confFileValue struct {
	c  *Config
	st *parseState
}

func (v confFileValue) String() string { return "" }
func (v confFileValue) Type() string   { return "file" }
func (v confFileValue) Set(path string) error {
	fail := func(format string, args ...any) error {
		return usageErr("--"+ConfFileFlag, "%s: %s", path, fmt.Sprintf(format, args...))
	}
	if v.st.inConf {
		return fail("a conf file may not read another")
	}
	f, err := os.Open(path)
	if err != nil {
		return usageErr("--"+ConfFileFlag, "%v", err)
	}
	defer f.Close()
	lines, warnings, err := ReadConf(f)
	if err != nil {
		return fail("%v", err)
	}
	v.c.Warnings = append(v.c.Warnings, warnings...)
	v.st.inConf = true
	defer func() { v.st.inConf = false }()
	fs := v.c.flagSet(v.st)
	v.st.confSets = append(v.st.confSets, fs)
	for _, l := range lines {
		err := fs.Parse(l.Args)
		switch {
		case errors.Is(err, errStop):
			return fail("line %d: %s stops the program: not an option for a conf file", l.Num, v.st.action)
		case err != nil:
			return fail("line %d: %s", l.Num, strings.TrimPrefix(flagError(err).Error(), "config: "))
		case fs.NArg() > 0:
			return fail("line %d: unexpected argument %q", l.Num, fs.Arg(0))
		}
	}
	return nil
}

// parseState is what one Parse shares between its FlagSets.
type parseState struct {
	// action is "help", "license" or "version" once one of -h, -i, -V
	// stopped the parse.
	action string
	// confSets are the FlagSets of the conf files read.
	confSets []*pflag.FlagSet
	// inConf is true while a conf file is being parsed.
	inConf bool
}

// changed reports whether the flag name was set on the command line fs
// or in a conf file.
func (st *parseState) changed(fs *pflag.FlagSet, name string) bool {
	if fs.Changed(name) {
		return true
	}
	for _, cs := range st.confSets {
		if cs.Changed(name) {
			return true
		}
	}
	return false
}
