package param

import "testing"

func TestParseBool(t *testing.T) {
	for _, s := range []string{"true", "TRUE", "True", "1", "yes", "Yes", "on", "ON"} {
		if b, err := ParseBool(s); err != nil || !b {
			t.Errorf("ParseBool(%q) = %t, %v; want true", s, b, err)
		}
	}
	for _, s := range []string{"false", "FALSE", "0", "no", "NO", "off", "Off"} {
		if b, err := ParseBool(s); err != nil || b {
			t.Errorf("ParseBool(%q) = %t, %v; want false", s, b, err)
		}
	}
	for _, s := range []string{"", "t", "f", "T", "F", "y", "n", "2", "-1", "yesplease", " true", "true ", "10", "enable"} {
		if b, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) = %t; want an error", s, b)
		}
	}
}
