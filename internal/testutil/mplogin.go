package testutil

import "regexp"

// Mplogin is the import path of the mplogin command, for Build.
const Mplogin = "github.com/mplogin/mplogin/cmd/mplogin"

// ServingLine matches the line `mplogin serve` logs, at level info, once it
// listens, in the JSON or the text format; the submatch is the address.
// It is the Ready line of a service a test starts.
func ServingLine() *regexp.Regexp {
	return regexp.MustCompile(`msg"?[:=]"?serving"?[, ]"?addr"?[:=]"?([^"\s]+)`)
}

// EmulatorLine matches the line `mplogin emulate` prints on stdout once it
// listens; the submatch is the address.
func EmulatorLine() *regexp.Regexp {
	return regexp.MustCompile(`^mplogin emulator on http://(\S+)`)
}
