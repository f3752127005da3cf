package param

import (
	"fmt"
	"strings"
)

// BoolWords lists the spellings ParseBool accepts, for error messages and
// documentation.
const BoolWords = "true|false|1|0|yes|no|on|off"

// ParseBool parses a boolean parameter: true, 1, yes or on; false, 0, no
// or off, in any case. These are the spellings go-sqlite3 accepts for its
// own boolean parameters, so that path_style, keep_previous and
// _foreign_keys take the same values.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want %s)", s, BoolWords)
}
