package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// row is one line of the table.
type row struct {
	name     string
	value    string // the scenario's median
	baseName string
	base     string // the baseline's median
	ratio    string
	target   string
	result   string // PASS, MISS or, for a failed scenario, its error
}

// ratioRow is a row for a duration whose ratio to its baseline's must stay
// at most (or, with atLeast, at least) target.
func ratioRow(name string, v time.Duration, baseName string, base time.Duration, target float64, atLeast bool) row {
	ratio := float64(v) / float64(base)
	ok := ratio <= target
	cmp := "≤ "
	if atLeast {
		ok, cmp = ratio >= target, "≥ "
	}
	return row{
		name:     name,
		value:    formatDuration(v),
		baseName: baseName,
		base:     formatDuration(base),
		ratio:    formatRatio(ratio),
		target:   cmp + formatRatio(target),
		result:   verdict(ok),
	}
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func formatRatio(r float64) string { return fmt.Sprintf("%.2f×", r) }

// formatDuration prints d with three significant digits.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3g s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	case d >= time.Microsecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

// formatMiB prints a byte count in MiB with one decimal.
func formatMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// printTable prints the header and the rows as aligned columns.
func printTable(w io.Writer, header string, rows []row) {
	fmt.Fprint(w, header)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmedian\tbaseline\tbaseline median\tratio\ttarget\tresult")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.name, r.value, dash(r.baseName), dash(r.base), dash(r.ratio), dash(r.target), dash(r.result))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
