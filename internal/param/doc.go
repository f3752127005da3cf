// Package param holds the value grammars shared by bucket URLs and DSNs,
// so that a parameter spelled one way in one place is spelled the same
// way everywhere.
package param
