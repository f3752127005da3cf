package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/buckethead/bucketsqlite/snapshot"
)

func cmdRestore(ctx context.Context, e *env, args []string) error {
	fs := e.flags("restore")
	var pt pointFlags
	pt.add(fs)
	force := fs.Bool("force", false, "overwrite FILE if it exists")
	check := fs.String("check", "", "integrity check: full, quick or none (default: the DSN's integrity_check, full)")
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	at, seq, err := pt.parse(time.Now())
	if err != nil {
		return err
	}
	t, err := e.open(ctx, pos[0])
	if err != nil {
		return err
	}
	file := pos[1]
	if _, err := os.Lstat(file); err == nil && !*force {
		return fmt.Errorf("%s exists: not overwriting it without --force", file)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	opts := snapshot.RestoreOptions{At: at, Seq: seq, Check: t.cfg.Check}
	if *check != "" {
		if opts.Check, err = snapshot.ParseCheck(*check); err != nil {
			return &usageError{err.Error()}
		}
	}
	info, err := snapshot.RestoreFile(ctx, t.b, t.key, file, opts)
	if err != nil {
		return err
	}
	if !info.Found {
		return fmt.Errorf("no database at %s", t.name())
	}
	fmt.Fprintf(e.stdout, "restored %s to %s: %s\n", t.name(), file, describe(info))
	return nil
}

// describe says what a restore found.
func describe(info snapshot.Info) string {
	s := fmt.Sprintf("base %s (%s)", info.BaseKey, size(info.Size))
	if info.Log {
		s += fmt.Sprintf(" and %d deltas (%s): sequence %d", info.Deltas, size(info.DeltaBytes), info.Seq)
	}
	if !info.Time.IsZero() {
		s += ", flushed " + stamp(info.Time)
	}
	return s
}

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flags("verify")
	var pt pointFlags
	pt.add(fs)
	check := fs.String("check", "full", "integrity check: full, quick or none")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	at, seq, err := pt.parse(time.Now())
	if err != nil {
		return err
	}
	c, err := snapshot.ParseCheck(*check)
	if err != nil {
		return &usageError{err.Error()}
	}
	t, err := e.open(ctx, pos[0])
	if err != nil {
		return err
	}
	info, err := snapshot.Verify(ctx, t.b, t.key, snapshot.RestoreOptions{At: at, Seq: seq, Check: c})
	if err != nil {
		return err
	}
	if !info.Found {
		return fmt.Errorf("no database at %s", t.name())
	}
	fmt.Fprintf(e.stdout, "ok: %s: %s; %s integrity check passed\n", t.name(), describe(info), c)
	return nil
}

func cmdLs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("ls")
	asJSON := fs.Bool("json", false, "print JSON (the snapshot.History type) instead of a table")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	t, err := e.open(ctx, pos[0])
	if err != nil {
		return err
	}
	h, err := snapshot.ReadHistory(ctx, t.b, t.key, snapshot.HistoryOptions{DeltaHeaders: true})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	if h.Base == nil && len(h.Deltas) == 0 && len(h.Archives) == 0 {
		return fmt.Errorf("no database at %s", t.name())
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tSEQ\tTIME\tSIZE\tWRITER\tKEY")
	row := func(v snapshot.Version) {
		seq := fmt.Sprint(v.Seq)
		if !v.Log {
			seq = "-"
		}
		tm := stamp(v.Time)
		if !v.TimeRecorded && !v.Time.IsZero() {
			tm += " (modified)"
		}
		writer := v.Writer
		if writer == "" {
			writer = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Kind, seq, tm, size(v.Size), writer, v.Key)
	}
	if h.Base != nil {
		row(*h.Base)
	}
	if h.Prev != nil {
		row(*h.Prev)
	}
	for _, v := range h.Archives {
		row(v)
	}
	for _, v := range h.Deltas {
		row(v)
	}
	return w.Flush()
}

func cmdPush(ctx context.Context, e *env, args []string) error {
	fs := e.flags("push")
	force := fs.Bool("force", false, "replace the database in the bucket (kept at KEY.prev unless keep_previous=false)")
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	t, err := e.open(ctx, pos[1])
	if err != nil {
		return err
	}
	res, err := snapshot.Push(ctx, t.b, t.key, pos[0], snapshot.PushOptions{
		Force: *force, KeepPrevious: t.cfg.KeepPrevious, Retention: t.cfg.Retention,
	})
	if errors.Is(err, snapshot.ErrConflict) && !*force {
		return fmt.Errorf("%w (use --force to replace it)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pushed %s to %s: a new base of %s, sequence %d\n", pos[0], t.name(), size(res.Size), res.Seq)
	if res.Replaced {
		switch {
		case res.KeptPrevious:
			fmt.Fprintf(e.stdout, "the database it replaced is kept at %s\n", snapshot.PrevKey(t.key))
		default:
			fmt.Fprintln(e.stdout, "the database it replaced is not kept at KEY.prev (keep_previous=false)")
		}
	}
	if res.Archived != "" {
		fmt.Fprintf(e.stdout, "the replaced base is archived at %s for point-in-time restores\n", res.Archived)
	}
	if res.Claimed != "" {
		fmt.Fprintf(e.stdout, "%s ends the old log: a writer still running on the old database is fenced (its next delta and its next base both conflict)\n", res.Claimed)
	}
	return nil
}

func cmdCompact(ctx context.Context, e *env, args []string) error {
	fs := e.flags("compact")
	unsafe := fs.Bool("unsafe", false, "compact on a bucket that ignores conditional writes (only with no writer running)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	t, err := e.open(ctx, pos[0])
	if err != nil {
		return err
	}
	safety := "the bucket enforces conditional writes (probed), so this is safe beside a running writer: " +
		"its later deltas chain to the new base, and its own compactions fail their If-Match (logged) until it is reopened"
	if err := snapshot.ProbeConditions(ctx, t.b, t.key); err != nil {
		if !errors.Is(err, snapshot.ErrConditionsIgnored) || !*unsafe {
			return fmt.Errorf("refusing to compact while a writer may be running: %w (stop every writer and pass --unsafe)", err)
		}
		safety = "the bucket ignores conditional writes: compacted unconditionally (--unsafe); no writer may have been running"
	}
	res, err := snapshot.Compact(ctx, t.b, t.key, snapshot.CompactOptions{
		KeepPrevious: t.cfg.KeepPrevious, Retention: t.cfg.Retention, Check: t.cfg.Check,
	})
	if err != nil {
		return err
	}
	if !res.Compacted {
		fmt.Fprintf(e.stdout, "nothing to compact: the base of %s includes sequence %d and no delta follows it\n", t.name(), res.Seq)
		return nil
	}
	fmt.Fprintf(e.stdout, "compacted %s: a new base of %s includes sequence %d (the old one included %d)\n", t.name(), size(res.Size), res.Seq, res.OldSeq)
	if res.Archived != "" {
		fmt.Fprintf(e.stdout, "the old base is archived at %s\n", res.Archived)
	}
	fmt.Fprintf(e.stdout, "deleted %d expired objects\n%s\n", len(res.Pruned.Deleted), safety)
	return nil
}

func cmdPrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("prune")
	retention := fs.Duration("retention", -1, "keep what restores this far back need (default: the DSN's retention, 0 without one)")
	dry := fs.Bool("dry-run", false, "list what would be deleted, delete nothing")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	t, err := e.open(ctx, pos[0])
	if err != nil {
		return err
	}
	d := t.cfg.Retention
	if *retention >= 0 {
		d = *retention
	}
	res, err := snapshot.Prune(ctx, t.b, t.key, snapshot.PruneOptions{Retention: d, DryRun: *dry})
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	for _, k := range res.Deleted {
		fmt.Fprintf(e.stdout, "%s %s\n", verb, k)
	}
	if err != nil {
		return err
	}
	if res.Keep != nil {
		fmt.Fprintf(e.stdout, "restores back to %s start from %s (sequence %d)\n", stamp(time.Now().Add(-d)), res.Keep.Key, res.Keep.Seq)
	}
	fmt.Fprintf(e.stdout, "%s %d objects; safe with a writer running: only objects no restore within the retention reads, and never the deltas of the base before the current one\n", verb, len(res.Deleted))
	return nil
}
