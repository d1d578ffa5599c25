package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Error is a command-line or setting error: the flag it concerns and what
// is wrong with it. Err is ErrUsage (Parse) or ErrInvalid (Validate), so
// errors.Is works on it.
type Error struct {
	// Flag names the flag as the user would write it: "-I", "--pprof",
	// "-o hashpower". Empty when the error concerns no single flag.
	Flag string
	// Msg says what is wrong.
	Msg string
	// Err is the sentinel: ErrUsage or ErrInvalid.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Flag == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Flag + ": " + e.Msg
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func usageErr(flag, format string, args ...any) *Error {
	return &Error{Flag: flag, Msg: fmt.Sprintf(format, args...), Err: ErrUsage}
}

// Parser parses mnemo's command line. Its fields only shape the -h output
// and the --engine check; the zero Parser writes to io.Discard.
type Parser struct {
	// Stdout receives the -h, -i and -V output.
	Stdout io.Writer
	// Engines lists the registered engine names, for the -h text and for
	// checking --engine. Empty: --engine is not checked here (opening the
	// engine will fail instead).
	Engines []string
	// EngineHelp is a block the caller adds to the -h text after the
	// --engine-config line (for instance each engine's config keys).
	EngineHelp string
}

// Parse parses args (without the program name) into a Config that starts
// from Default. With -h it prints Usage to stdout and returns ErrHelp;
// with -V it prints "mnemo <Version>" and returns ErrVersion; with -i it
// prints the license notice and returns ErrHelp. As with getopt, the first
// of -h, -V, -i ends parsing (a -Z before it is accepted, as memcached
// built with TLS accepts it, so the probe "--enable-ssl --version"
// succeeds). Other errors wrap ErrUsage. Parse reads MEMCACHED_SASL_PWDB
// and MEMCACHED_PORT_FILENAME from the environment, as memcached does.
// --config-file FILE reads options from a conf file (see ReadConf) where
// it stands. It does not call Validate or
// Unsupported: the caller does.
func Parse(args []string, stdout io.Writer) (*Config, error) {
	return (&Parser{Stdout: stdout}).Parse(args)
}

// errStop ends parsing at -h, -V or -i.
var errStop = errors.New("config: stop")

// Parse is the package-level Parse with the Parser's engine list and help.
func (p *Parser) Parse(args []string) (*Config, error) {
	out := p.Stdout
	if out == nil {
		out = io.Discard
	}
	c := Default()
	st := &parseState{}
	fs := c.flagSet(st)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, errStop):
		switch st.action {
		case "help":
			Usage(out, p.Engines, p.EngineHelp)
			return nil, ErrHelp
		case "license":
			printLicense(out)
			return nil, ErrHelp
		default:
			fmt.Fprintf(out, "mnemo %s\n", Version)
			return nil, ErrVersion
		}
	case err != nil:
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		return nil, usageErr("", "unexpected argument %q", fs.Arg(0))
	}
	// memcached: -U without -p moves TCP to the UDP port.
	if st.changed(fs, "udp-port") && c.UDPPort != 0 && !st.changed(fs, "port") {
		c.Port = c.UDPPort
	}
	// memcached: SASL implies the binary protocol and ascii auth the ascii
	// protocol unless -B was given (Validate reports a conflict).
	// memcached's SASL password database comes from the environment.
	if c.SASLPwdb == "" {
		c.SASLPwdb = os.Getenv("MEMCACHED_SASL_PWDB")
	}
	// memcached writes its bound ports to the file this names.
	c.PortFile = os.Getenv("MEMCACHED_PORT_FILENAME")
	if !st.changed(fs, "protocol") {
		if c.SASL {
			c.Protocol = "binary"
		} else if c.AuthFile != "" {
			c.Protocol = "ascii"
		}
	}
	if c.Threads > 64 {
		c.Warnings = append(c.Warnings, "setting a high number of worker threads (-t above 64) is not recommended; set it to the number of cores or less")
	}
	if err := c.applyExtPath(st.changed(fs, "engine")); err != nil {
		return nil, err
	}
	if len(p.Engines) > 0 && !slices.Contains(p.Engines, c.Engine) {
		return nil, usageErr("--engine", "unknown engine %q (known: %s)", c.Engine, strings.Join(p.Engines, ", "))
	}
	return c, nil
}

// flagError turns a pflag error into an *Error.
func flagError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		return usageErr(flagName(iv.GetFlag()), "invalid value %q: %v", iv.GetValue(), errors.Unwrap(iv))
	}
	return &Error{Msg: err.Error(), Err: ErrUsage}
}

func flagName(f *pflag.Flag) string {
	if f.Shorthand != "" {
		return "-" + f.Shorthand
	}
	return "--" + f.Name
}

// flagSet defines every flag on a new FlagSet writing into c. The first of
// -h, -i, -V stores its name in st.action and stops parsing.
func (c *Config) flagSet(st *parseState) *pflag.FlagSet {
	action := &st.action
	fs := pflag.NewFlagSet("mnemo", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	// memcached's -h spells --napi_ids; its option table --napi-ids.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	v := func(value pflag.Value, name, short string) *pflag.Flag {
		fs.VarP(value, name, short, "")
		return fs.Lookup(name)
	}
	noArg := func(f *pflag.Flag) { f.NoOptDefVal = "true" }

	v(intValue{&c.Port}, "port", "p")
	v(intValue{&c.UDPPort}, "udp-port", "U")
	v(stringValue{&c.UnixSocket}, "unix-socket", "s")
	v(octalValue{c}, "unix-mask", "a")
	fs.BoolVarP(&c.EnableShutdown, "enable-shutdown", "A", false, "")
	v(listenValue{c}, "listen", "l")
	fs.BoolVarP(&c.Daemonize, "daemon", "d", false, "")
	fs.BoolVarP(&c.EnableCoredumps, "enable-coredumps", "r", false, "")
	v(stringValue{&c.User}, "user", "u")
	v(megabyteValue{&c.MemoryLimit}, "memory-limit", "m")
	fs.BoolVarP(&c.NoEvict, "disable-evictions", "M", false, "")
	v(intValue{&c.MaxConns}, "conn-limit", "c")
	fs.BoolVarP(&c.LockMemory, "lock-memory", "k", false, "")
	fs.CountVarP(&c.Verbose, "verbose", "v", "")
	noArg(v(actionValue{action, "help"}, "help", "h"))
	noArg(v(actionValue{action, "license"}, "license", "i"))
	noArg(v(actionValue{action, "version"}, "version", "V"))
	v(stringValue{&c.PidFile}, "pidfile", "P")
	v(floatValue{&c.Factor}, "slab-growth-factor", "f")
	v(intValue{&c.ChunkSize}, "slab-min-size", "n")
	fs.BoolVarP(&c.LargePages, "enable-largepages", "L", false, "")
	// -D has no long name in memcached; "delimiter" is mnemo's.
	v(delimiterValue{c}, "delimiter", "D")
	v(intValue{&c.Threads}, "threads", "t")
	v(intValue{&c.ReqsPerEvent}, "max-reqs-per-event", "R")
	fs.BoolVarP(&c.DisableCAS, "disable-cas", "C", false, "")
	v(intValue{&c.Backlog}, "listen-backlog", "b")
	v(protocolValue{&c.Protocol}, "protocol", "B")
	v(itemSizeValue{&c.ItemSizeMax}, "max-item-size", "I")
	fs.BoolVarP(&c.SASL, "enable-sasl", "S", false, "")
	fs.BoolVarP(&c.DisableFlush, "disable-flush-all", "F", false, "")
	fs.BoolVarP(&c.DisableDumping, "disable-dumping", "X", false, "")
	fs.BoolVarP(&c.DisableWatch, "disable-watch", "W", false, "")
	v(stringValue{&c.AuthFile}, "auth-file", "Y")
	v(stringValue{&c.MemoryFile}, "memory-file", "e")
	fs.BoolVarP(&c.TLS, "enable-ssl", "Z", false, "")
	v(extendedValue{c}, "extended", "o")
	v(intValue{&c.NapiIDs}, "napi-ids", "N")

	v(stringValue{&c.Engine}, "engine", "")
	v(stringValue{&c.EngineConfig}, "engine-config", "")
	v(stringValue{&c.Pprof}, "pprof", "")
	v(stringValue{&c.MetricsListen}, "metrics-listen", "")
	v(intValue{&c.HotKeys}, "hotkeys", "")
	v(durationValue{&c.HotKeysWindow}, "hotkeys-window", "")
	v(intValue{&c.HotKeysSample}, "hotkeys-sample", "")
	v(stringValue{&c.SASLPwdb}, "sasl-pwdb", "")
	v(confFileValue{c, st}, ConfFileFlag, "")
	return fs
}

// Flag values. Each parses strictly and writes straight into the Config, in
// command-line order, so later flags override earlier ones as in getopt.

type intValue struct{ p *int }

func (v intValue) String() string { return strconv.Itoa(*v.p) }
func (v intValue) Type() string   { return "int" }
func (v intValue) Set(s string) error {
	n, err := parseInt(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// parseInt parses a decimal int that fits in 32 bits, as memcached's ints do.
func parseInt(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, numErr(err, "an integer")
	}
	return int(n), nil
}

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, numErr(err, "an unsigned 32-bit integer")
	}
	return uint32(n), nil
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a number")
	}
	return f, nil
}

func numErr(err error, what string) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of range")
	}
	return errors.New("not " + what)
}

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string { return v.p.String() }
func (v durationValue) Type() string   { return "duration" }
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration such as 60s or 5m")
	}
	*v.p = d
	return nil
}

type stringValue struct{ p *string }

func (v stringValue) String() string     { return *v.p }
func (v stringValue) Type() string       { return "string" }
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type floatValue struct{ p *float64 }

func (v floatValue) String() string { return strconv.FormatFloat(*v.p, 'g', -1, 64) }
func (v floatValue) Type() string   { return "float" }
func (v floatValue) Set(s string) error {
	f, err := parseFloat(s)
	if err != nil {
		return err
	}
	*v.p = f
	return nil
}

// megabyteValue is -m: whole megabytes, stored in bytes.
type megabyteValue struct{ p *int64 }

func (v megabyteValue) String() string { return strconv.FormatInt(*v.p>>20, 10) }
func (v megabyteValue) Type() string   { return "megabytes" }
func (v megabyteValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return numErr(err, "a whole number of megabytes")
	}
	if n < 0 || n > math.MaxInt64>>20 {
		return errors.New("out of range")
	}
	*v.p = n << 20
	return nil
}

// itemSizeValue is -I: bytes, or a number with a k or m suffix (any case).
type itemSizeValue struct{ p *int }

func (v itemSizeValue) String() string { return strconv.Itoa(*v.p) }
func (v itemSizeValue) Type() string   { return "size" }
func (v itemSizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// parseSize parses memcached's -I sizes: "1048576", "1024k", "1m", "2M".
func parseSize(s string) (int, error) {
	shift := 0
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			shift, s = 10, s[:len(s)-1]
		case 'm', 'M':
			shift, s = 20, s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("not a size (bytes, or a number with a k or m suffix)")
	}
	if n > math.MaxInt32>>shift {
		return 0, errors.New("out of range")
	}
	return int(n << shift), nil
}

type octalValue struct{ c *Config }

func (v octalValue) String() string { return strconv.FormatUint(uint64(v.c.UnixMask), 8) }
func (v octalValue) Type() string   { return "octal" }
func (v octalValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return errors.New("not an octal access mask (000 to 777)")
	}
	v.c.UnixMask = os.FileMode(n)
	return nil
}

type delimiterValue struct{ c *Config }

func (v delimiterValue) String() string { return string(v.c.Delimiter) }
func (v delimiterValue) Type() string   { return "char" }
func (v delimiterValue) Set(s string) error {
	if s == "" {
		return errors.New("no delimiter specified")
	}
	// memcached takes the first byte and ignores the rest.
	v.c.Delimiter = s[0]
	v.c.DetailEnabled = true
	return nil
}

type protocolValue struct{ p *string }

func (v protocolValue) String() string { return *v.p }
func (v protocolValue) Type() string   { return "name" }
func (v protocolValue) Set(s string) error {
	switch s {
	case "auto", "ascii", "binary":
		*v.p = s
		return nil
	}
	return errors.New("should be one of auto, binary, or ascii")
}

// listenValue appends -l entries, split on ',' and ';' as memcached splits
// its interface list, dropping empty entries and repeats.
type listenValue struct{ c *Config }

func (v listenValue) String() string { return strings.Join(v.c.Listen, ",") }
func (v listenValue) Type() string   { return "addr" }
func (v listenValue) Set(s string) error {
	for e := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ';' }) {
		if !slices.Contains(v.c.Listen, e) {
			v.c.Listen = append(v.c.Listen, e)
		}
	}
	return nil
}

// actionValue is -h, -i, -V: it records the first and stops the parse.
type actionValue struct {
	p    *string
	name string
}

func (v actionValue) String() string { return "false" }
func (v actionValue) Type() string   { return "bool" }
func (v actionValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not a boolean")
	}
	if !b {
		return nil
	}
	*v.p = v.name
	return errStop
}

// extendedValue is -o: a comma separated list of key or key=value.
type extendedValue struct{ c *Config }

func (v extendedValue) String() string { return "" }
func (v extendedValue) Type() string   { return "options" }
func (v extendedValue) Set(s string) error {
	for opt := range strings.SplitSeq(s, ",") {
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		if err := v.c.setExtended(key, val, hasVal); err != nil {
			return err
		}
	}
	return nil
}
