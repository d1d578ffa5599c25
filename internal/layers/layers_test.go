// Package layers holds the test that keeps mnemo's import rule true:
// imports point downward only (see DESIGN.md, "Layers and the direction of
// imports").
package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/mnemo-cache/mnemo/"

// forbidden maps a package directory (and the directories below it) to the
// mnemo packages it must not import (prefixes; "" is every mnemo package).
// A directory is held to the rules of its longest listed prefix. Test
// files are held to the same rules.
//
// internal/number (memcached's number rules) is a leaf: it imports no mnemo
// package, and every layer but server and config may import it.
var forbidden = map[string][]string{
	"server":          {""}, // the framework imports no mnemo package at all
	"config":          {""},
	"internal/number": {""}, // a leaf any layer may import
	"protocol":        {"engine", "server", "cache", "memcache", "config"},
	"engine":          {"protocol", "server", "cache", "memcache", "config"},
	"cache":           {"protocol", "server", "memcache", "config"},
	"memcache":        {"config"},

	// The request-path instruments: leaves that the memcached application
	// feeds and the daemon serves (metrics reads stats through a function,
	// never from the layers themselves).
	"internal/hotkeys": {""},
	"internal/metrics": {"server", "protocol", "engine", "cache", "memcache", "config", "internal/daemon"},

	// The test hooks, which the engines import (internal/testhook) and
	// the tests of every layer may: at the engine's level.
	"internal/testhook": {"server", "protocol", "cache", "memcache", "config", "internal/daemon"},
	"internal/faultfs":  {"server", "protocol", "cache", "memcache", "config", "internal/daemon"},
}

// layerOf returns the longest key of forbidden that is dir or a directory
// above it, and false when none is.
func layerOf(dir string) (string, bool) {
	for d := dir; ; {
		if _, ok := forbidden[d]; ok {
			return d, true
		}
		i := strings.LastIndexByte(d, '/')
		if i < 0 {
			return "", false
		}
		d = d[:i]
	}
}

// violations returns the imports of a file in directory dir (relative to
// the module root, slash-separated) that break the rules.
func violations(dir string, imports []string) []string {
	layer, ok := layerOf(dir)
	if !ok {
		return nil
	}
	var bad []string
	for _, p := range imports {
		if !strings.HasPrefix(p, module) {
			continue
		}
		target := strings.TrimPrefix(p, module)
		if target == layer || strings.HasPrefix(target, layer+"/") {
			continue // within its own layer
		}
		for _, rule := range forbidden[layer] {
			if rule == "" || target == rule || strings.HasPrefix(target, rule+"/") {
				bad = append(bad, layer+"/ must not import "+target)
				break
			}
		}
	}
	return bad
}

func TestImportsPointDownward(t *testing.T) {
	root := "../.."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		if _, ok := layerOf(dir); !ok {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		imports := make([]string, 0, len(f.Imports))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports = append(imports, p)
		}
		for _, v := range violations(dir, imports) {
			t.Errorf("%s: %s", rel, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no Go files checked: is the test running from internal/layers?")
	}
}

// TestRules checks that the rules catch what they are meant to catch.
func TestRules(t *testing.T) {
	tests := []struct {
		dir string
		imp string
		bad bool
	}{
		{"internal/number", "strconv", false},
		{"internal/number", module + "protocol/text", true},
		{"internal/number", module + "internal/layers", true},
		{"internal/number", module + "engine", true},
		{"internal/number/sub", module + "cache", true},
		{"internal/number/sub", module + "internal/number", false},
		{"server", module + "internal/number", true},
		{"server/x", module + "protocol/text", true},
		{"config", module + "internal/number", true},
		{"protocol/text", module + "internal/number", false},
		{"protocol/text", module + "protocol/meta", false},
		{"protocol/text", module + "engine", true},
		{"cache", module + "internal/number", false},
		{"cache", module + "engine/memory", false},
		{"cache", module + "protocol/text", true},
		{"memcache", module + "internal/number", false},
		{"memcache", module + "config", true},
		{"engine/memory", module + "internal/number", false},
		{"engine/memory", module + "cache", true},
		{"cmd/mnemo", module + "config", false},
		{"internal/hotkeys", module + "internal/number", true},
		{"internal/metrics", module + "internal/hotkeys", false},
		{"internal/metrics", module + "memcache", true},
		{"memcache", module + "internal/metrics", false},
	}
	for _, tt := range tests {
		got := violations(tt.dir, []string{tt.imp})
		if bad := len(got) > 0; bad != tt.bad {
			t.Errorf("%s importing %s: violations %q, want bad=%v", tt.dir, tt.imp, got, tt.bad)
		}
	}
}
