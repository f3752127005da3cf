package driver

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The _pragma=NAME(VALUE) form of the modernc and ncruces drivers, which
// GORM's documentation shows, is accepted: a pragma go-sqlite3 has a
// parameter for becomes that parameter (so it is checked exactly as
// _foreign_keys=1 would be, and refused where it would break the driver's
// guarantees); any other is run on every pooled connection.

// pragmaParams maps a pragma to the go-sqlite3 parameter that sets it.
var pragmaParams = map[string]string{
	"foreign_keys": "_foreign_keys", "busy_timeout": "_busy_timeout", "journal_mode": "_journal_mode",
	"synchronous": "_synchronous", "locking_mode": "_locking_mode", "cache_size": "_cache_size",
	"auto_vacuum": "_auto_vacuum", "secure_delete": "_secure_delete", "case_sensitive_like": "_case_sensitive_like",
	"recursive_triggers": "_recursive_triggers", "defer_foreign_keys": "_defer_foreign_keys",
	"ignore_check_constraints": "_ignore_check_constraints", "query_only": "_query_only",
}

// refusedPragmas would break the driver's guarantees.
var refusedPragmas = map[string]string{
	"writable_schema": "it lets statements write the schema table directly, and a damaged schema would be flushed to the bucket",
	"schema_version":  "writing it can damage the database, which would be flushed to the bucket",
	"wal_checkpoint":  "it is a command, not a setting",
	"key":             "go-sqlite3 has no encryption",
	"rekey":           "go-sqlite3 has no encryption",
}

var (
	pragmaForm  = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\)|=(.*))$`)
	pragmaValue = regexp.MustCompile(`^(?:[A-Za-z0-9_.+-]+|'[^']*')$`)
)

// parsePragma parses NAME(VALUE) or NAME=VALUE.
func parsePragma(s string) (name, value string, err error) {
	m := pragmaForm.FindStringSubmatch(s)
	if m == nil {
		return "", "", fmt.Errorf("want NAME(VALUE), as in foreign_keys(1), got %q", s)
	}
	name, value = strings.ToLower(m[1]), m[2]+m[3]
	if !pragmaValue.MatchString(value) {
		return "", "", fmt.Errorf("%s: want a number, a word or a 'quoted string' as the value, got %q", name, value)
	}
	if why, ok := refusedPragmas[name]; ok {
		return "", "", fmt.Errorf("%s is refused: %s", name, why)
	}
	return name, value, nil
}

// setPragma applies one _pragma DSN value to cfg.
func (cfg *Config) setPragma(val string) error {
	name, value, err := parsePragma(val)
	if err != nil {
		return dsnErr("_pragma", "%v", err)
	}
	if param, ok := pragmaParams[name]; ok {
		canon, v, err := sqliteParam(param, strings.Trim(value, "'"))
		if err != nil {
			var de *DSNError
			if errors.As(err, &de) {
				return dsnErr("_pragma", "%s: %s", name, de.Msg)
			}
			return err
		}
		if cfg.SQLite.Has(canon) {
			return dsnErr("_pragma", "%s given twice (also as %s)", name, canon)
		}
		if cfg.SQLite == nil {
			cfg.SQLite = map[string][]string{}
		}
		cfg.SQLite.Set(canon, v)
		return nil
	}
	cfg.Pragmas = append(cfg.Pragmas, name+"="+value)
	return nil
}

// checkPragmas checks Config.Pragmas, as normalize does.
func checkPragmas(pragmas []string) error {
	for _, p := range pragmas {
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			return dsnErr("_pragma", "want NAME=VALUE in Config.Pragmas, got %q", p)
		}
		n, _, err := parsePragma(name + "(" + value + ")")
		if err != nil {
			return dsnErr("_pragma", "%v", err)
		}
		if n != name {
			return dsnErr("_pragma", "use the lower-case name %s", n)
		}
		if param, ok := pragmaParams[n]; ok {
			return dsnErr("_pragma", "set %s with Config.SQLite[%q]", n, param)
		}
	}
	return nil
}

// otherDrivers explains the DSN parameters users bring from other SQLite
// drivers and what to use instead.
var otherDrivers = map[string]string{
	"cache":        "bucketsqlite keeps one working copy per database, shared by every handle in the process; remove cache=",
	"mode":         "the working copy is always read-write; for a read-only handle use _query_only=1",
	"parseTime":    "go-sqlite3 returns DATETIME, DATE and TIMESTAMP columns as time.Time by itself; remove parseTime",
	"_time_format": "go-sqlite3 writes time.Time in its own format; _loc sets the time zone it reads times in",
	"_txlock":      "", // go-sqlite3's own: handled by sqliteParam
}
