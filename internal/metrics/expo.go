package metrics

import (
	"bytes"
	"strconv"
	"strings"
)

// The Prometheus text exposition format (version 0.0.4), written by hand:
// every family gets its HELP and TYPE lines, which promtool's lint
// requires (see the package documentation for why not a library).

// Type is a metric family's type.
type Type string

// The metric types.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
	Untyped   Type = "untyped"
)

// family is one metric family being built: its samples, already
// formatted.
type family struct {
	name, help string
	typ        Type
	samples    bytes.Buffer
}

// exposition collects metric families in the order they are first named
// and writes them out with their metadata, each family's samples
// together, as the format requires.
type exposition struct {
	order []*family
	byNam map[string]*family
}

func newExposition() *exposition {
	return &exposition{byNam: map[string]*family{}}
}

// family returns the family called name, creating it with help and typ.
func (e *exposition) family(name, help string, typ Type) *family {
	f := e.byNam[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		e.byNam[name] = f
		e.order = append(e.order, f)
	}
	return f
}

// add adds one sample of family name; labels are name, value pairs and
// value is a number as text (see appendValue).
func (e *exposition) add(name, help string, typ Type, value string, labels ...string) {
	f := e.family(name, help, typ)
	f.sample(name, value, labels...)
}

// sample appends a sample line called name (a family's name, or one of a
// histogram's _bucket, _sum and _count lines).
func (f *family) sample(name, value string, labels ...string) {
	b := &f.samples
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			writeLabelValue(b, labels[i+1])
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(value)
	b.WriteByte('\n')
}

// bytes returns the exposition: every family with samples.
func (e *exposition) bytes() []byte {
	var out bytes.Buffer
	for _, f := range e.order {
		if f.samples.Len() == 0 {
			continue
		}
		out.WriteString("# HELP ")
		out.WriteString(f.name)
		out.WriteByte(' ')
		out.WriteString(escapeHelp(f.help))
		out.WriteString("\n# TYPE ")
		out.WriteString(f.name)
		out.WriteByte(' ')
		out.WriteString(string(f.typ))
		out.WriteByte('\n')
		out.Write(f.samples.Bytes())
	}
	return out.Bytes()
}

// writeLabelValue writes v escaped as the format requires (backslash,
// double quote and newline).
func writeLabelValue(b *bytes.Buffer, v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
}

func escapeHelp(h string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(h)
}

// number returns v, a statistic's value, as a sample value: integers as
// they are (exact beyond 2^53), anything else that parses as a float in
// Go's shortest form. ok is false when v is not a number.
func number(v string) (string, bool) {
	if _, err := strconv.ParseUint(v, 10, 64); err == nil {
		return v, true
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "", false
	}
	return formatFloat(f), true
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
