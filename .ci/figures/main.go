// Command figures prints the structure figures that issue 26 asks for: for
// each package the lines of Go (non-test and test) and the exported names, and
// the methods per type for the largest types. It reads source only (go/ast),
// so it runs the same on any commit: go run ./.ci/figures [dir].
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type pkg struct {
	lines, testLines, exported, files int
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	pkgs := map[string]*pkg{}
	methods := map[string]int{}  // pkg.Type -> methods
	exported := map[string]int{} // pkg.Type -> exported methods
	fset := token.NewFileSet()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		p := pkgs[dir]
		if p == nil {
			p = &pkg{}
			pkgs[dir] = p
		}
		n := bytes.Count(src, []byte("\n"))
		if strings.HasSuffix(name, "_test.go") {
			p.testLines += n
			return nil
		}
		p.lines += n
		p.files++
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					if d.Name.IsExported() {
						p.exported++
					}
					continue
				}
				t := d.Recv.List[0].Type
				if s, ok := t.(*ast.StarExpr); ok {
					t = s.X
				}
				if ix, ok := t.(*ast.IndexExpr); ok {
					t = ix.X
				}
				if ix, ok := t.(*ast.IndexListExpr); ok {
					t = ix.X
				}
				id, ok := t.(*ast.Ident)
				if !ok {
					continue
				}
				key := dir + "." + id.Name
				methods[key]++
				if d.Name.IsExported() {
					exported[key]++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							p.exported++
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								p.exported++
							}
						}
					}
				}
			}
		}
		return nil
	})
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	fmt.Printf("%-36s %6s %6s %6s %8s\n", "package", "files", "lines", "tests", "exported")
	var tl, tt, te int
	for _, d := range dirs {
		p := pkgs[d]
		tl, tt, te = tl+p.lines, tt+p.testLines, te+p.exported
		fmt.Printf("%-36s %6d %6d %6d %8d\n", d, p.files, p.lines, p.testLines, p.exported)
	}
	fmt.Printf("%-36s %6s %6d %6d %8d\n", "total", "", tl, tt, te)
	types := make([]string, 0, len(methods))
	for t := range methods {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if methods[types[i]] != methods[types[j]] {
			return methods[types[i]] > methods[types[j]]
		}
		return types[i] < types[j]
	})
	fmt.Printf("\n%-44s %7s %8s\n", "largest types", "methods", "exported")
	for i, t := range types {
		if i == 8 {
			break
		}
		fmt.Printf("%-44s %7d %8d\n", t, methods[t], exported[t])
	}
}
