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

// forbidden maps a package directory prefix to the mnemo packages it must
// not import (prefixes). Test files are held to the same rule, except
// that they may import the engine conformance suite and engines' bundle.
var forbidden = map[string][]string{
	"server":   {""}, // the framework imports no mnemo package at all
	"config":   {""},
	"protocol": {"engine", "server", "cache", "memcache", "config"},
	"engine":   {"protocol", "server", "cache", "memcache", "config"},
	"cache":    {"protocol", "server", "memcache", "config"},
	"memcache": {"config"},
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
		top, _, _ := strings.Cut(dir, "/")
		rules, ok := forbidden[top]
		if !ok {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			target := strings.TrimPrefix(p, module)
			if strings.HasPrefix(target, top+"/") || target == top {
				continue // within its own layer
			}
			for _, bad := range rules {
				if bad == "" || target == bad || strings.HasPrefix(target, bad+"/") {
					t.Errorf("%s imports %s: %s/ must not import %s", rel, p, top, target)
				}
			}
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
