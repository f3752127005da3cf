package driver

import (
	"strconv"
	"strings"

	"github.com/buckethead/bucketsqlite/internal/param"
)

// sqliteAliases maps go-sqlite3's short parameter names to canonical ones.
var sqliteAliases = map[string]string{
	"_journal": "_journal_mode", "_timeout": "_busy_timeout", "_fk": "_foreign_keys",
	"_defer_fk": "_defer_foreign_keys", "_cslike": "_case_sensitive_like",
	"_rt": "_recursive_triggers", "_sync": "_synchronous", "_vacuum": "_auto_vacuum",
	"_locking": "_locking_mode",
}

func oneOf(vals ...string) func(string) (string, bool) {
	return func(s string) (string, bool) {
		for _, v := range vals {
			if strings.EqualFold(s, v) {
				return v, true
			}
		}
		return "", false
	}
}

func isBool(s string) (string, bool) {
	b, err := param.ParseBool(s)
	if err != nil {
		return "", false
	}
	if b {
		return "1", true
	}
	return "0", true
}

func isBoolOrFast(s string) (string, bool) {
	if strings.EqualFold(s, "FAST") {
		return "FAST", true
	}
	return isBool(s)
}

// wantBool names the grammar of isBool in error messages.
const wantBool = "a boolean (" + param.BoolWords + ")"

func isInt(min int64) func(string) (string, bool) {
	return func(s string) (string, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < min {
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	}
}

// sqliteParams are the go-sqlite3 parameters a DSN may pass through, each
// with a validator that also normalizes the value.
var sqliteParams = map[string]struct {
	valid func(string) (string, bool)
	want  string
}{
	"_journal_mode": {oneOf("WAL", "DELETE", "TRUNCATE", "PERSIST"), "WAL, DELETE, TRUNCATE or PERSIST " +
		"(MEMORY and OFF can leave a damaged database after a rollback or a crash, and a flush would upload it)"},
	"_busy_timeout":             {isInt(0), "milliseconds, a non-negative integer"},
	"_foreign_keys":             {isBool, wantBool},
	"_defer_foreign_keys":       {isBool, wantBool},
	"_case_sensitive_like":      {isBool, wantBool},
	"_recursive_triggers":       {isBool, wantBool},
	"_ignore_check_constraints": {isBool, wantBool},
	"_query_only":               {isBool, wantBool},
	"_synchronous":              {oneOf("OFF", "NORMAL", "FULL", "EXTRA"), "OFF, NORMAL, FULL or EXTRA"},
	"_auto_vacuum":              {oneOf("NONE", "FULL", "INCREMENTAL"), "NONE, FULL or INCREMENTAL"},
	"_secure_delete":            {isBoolOrFast, "FAST or " + wantBool},
	"_cache_size":               {isInt(-1 << 62), "an integer"},
	"_txlock":                   {oneOf("deferred", "immediate", "exclusive"), "deferred, immediate or exclusive"},
	"_locking_mode":             {oneOf("NORMAL"), "NORMAL (EXCLUSIVE would lock the flusher out)"},
	"_loc":                      {func(s string) (string, bool) { return s, s != "" }, "auto or a time zone name"},
	"_mutex":                    {oneOf("no", "full"), "no or full"},
	"_stmt_cache_size":          {isInt(0), "a non-negative integer"},
}

func sqliteParam(name, val string) (string, string, error) {
	canon := name
	if a, ok := sqliteAliases[name]; ok {
		canon = a
	}
	if strings.HasPrefix(canon, "_auth") {
		return "", "", dsnErr(name, "SQLite user authentication is not supported: credentials do not belong in the DSN")
	}
	p, ok := sqliteParams[canon]
	if !ok {
		return "", "", dsnErr(name, "unknown go-sqlite3 parameter")
	}
	v, ok := p.valid(val)
	if !ok {
		return "", "", dsnErr(name, "want %s, got %q", p.want, val)
	}
	return canon, v, nil
}
