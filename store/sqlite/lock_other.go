//go:build !unix

package sqlite

import "os"

// lockFile takes no lock where flock is missing: one process per file is
// then the operator's to ensure.
func lockFile(string) (*os.File, error) { return nil, nil }

// modesMeaningful: Unix file modes do not say who may read a file here.
const modesMeaningful = false
