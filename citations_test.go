package mplogin_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// mdPath is a cited Markdown file: a path ending in .md.
	mdPath = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b`)
	// url is a web address, whose .md paths are not in the tree.
	url = regexp.MustCompile(`https?://[^\s)>\]"'` + "`" + `]+`)
	// issueRef is a reference to a numbered issue of some tracker.
	issueRef = regexp.MustCompile(`(?i)\bissues? #?\d+\b`)
)

// TestCitationsExist fails when a comment or a document cites a Markdown
// file the repository does not hold, or an issue by number: whoever reads
// the code has the repository and nothing else. A path counts when it
// exists from the repository's root or from the citing file's folder. In Go
// files only comments are read.
func TestCitationsExist(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(name) {
		case ".go", ".md", ".sql", ".js", ".mjs", ".ts", ".yaml":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if rel == "citations_test.go" {
				break // its own patterns and examples
			}
			if filepath.Ext(name) == ".go" {
				// Comments only: strings name files that tests open.
				_, comment, ok := strings.Cut(line, "//")
				if !ok {
					continue
				}
				line = comment
			}
			line = url.ReplaceAllString(line, "")
			for _, cited := range mdPath.FindAllString(line, -1) {
				if exists(filepath.Join(root, cited)) || exists(filepath.Join(filepath.Dir(path), cited)) {
					continue
				}
				t.Errorf("%s:%d cites %s, which is not in the repository", rel, i+1, cited)
			}
			if m := issueRef.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q: say what it means instead", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d files checked: is the test running from the repository's root?", checked)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
