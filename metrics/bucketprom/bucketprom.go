//go:build cgo

package bucketprom

import (
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buckethead/bucketsqlite/driver"
)

// Namespace prefixes every metric name the Collector exports.
const Namespace = "bucketsqlite"

// DatabaseLabel is the name of the constant label that tells databases
// apart; its value is set with WithDatabase.
const DatabaseLabel = "database"

// Option configures a Collector.
type Option func(*options)

type options struct {
	database string
	labels   prometheus.Labels
}

// WithDatabase sets the value of the database label on every metric.
// Give each Collector registered with one registry its own name, e.g. the
// name the application uses for the database; without it the label is
// empty, and a second unnamed Collector fails to register.
func WithDatabase(name string) Option {
	return func(o *options) { o.database = name }
}

// WithConstLabels adds constant labels to every metric, e.g. a tenant or
// a shard. A database label among them is replaced by WithDatabase's
// value. Every Collector registered with one registry must use the same
// label names.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(o *options) {
		for k, v := range labels {
			o.labels[k] = v
		}
	}
}

// Collector is a prometheus.Collector that reports one database's
// driver.Stats. Each scrape reads the statistics once, with
// driver.GetStats, so the values of one scrape are consistent with each
// other; nothing is kept between scrapes. A Collector is safe for
// concurrent use.
type Collector struct {
	db      *sql.DB
	metrics []metric
	invalid *prometheus.Desc
}

// metric is one exported series: how to describe it and how to read its
// value out of the statistics.
type metric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*driver.Stats) float64
}

// NewCollector returns a Collector for db, which must have been opened
// with the bucketsqlite driver. Register it with a prometheus.Registerer:
//
//	prometheus.MustRegister(bucketprom.NewCollector(db, bucketprom.WithDatabase("todos")))
//
// The Collector does not keep db open: a closed database reports its
// final statistics. A db that is not a bucketsqlite database makes every
// scrape fail with driver.ErrNotBucketSQLite.
func NewCollector(db *sql.DB, opts ...Option) *Collector {
	o := options{labels: prometheus.Labels{}}
	for _, opt := range opts {
		opt(&o)
	}
	labels := prometheus.Labels{}
	for k, v := range o.labels {
		labels[k] = v
	}
	labels[DatabaseLabel] = o.database
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, labels)
	}
	c := &Collector{db: db}
	add := func(name, help string, typ prometheus.ValueType, value func(*driver.Stats) float64) {
		c.metrics = append(c.metrics, metric{desc(name, help), typ, value})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue

	add("flushes_total", "Flush attempts: periodic, explicit and final.", counter,
		func(s *driver.Stats) float64 { return float64(s.Flushes) })
	add("uploads_total", "Flushes that uploaded a snapshot.", counter,
		func(s *driver.Stats) float64 { return float64(s.Uploads) })
	add("skips_total", "Flushes that uploaded nothing because nothing changed.", counter,
		func(s *driver.Stats) float64 { return float64(s.Skips) })
	add("flush_failures_total", "Flushes that returned an error.", counter,
		func(s *driver.Stats) float64 { return float64(s.Failures) })
	add("uploaded_bytes_total", "Total size of the uploaded snapshots, in bytes.", counter,
		func(s *driver.Stats) float64 { return float64(s.BytesUploaded) })
	add("last_flush_timestamp_seconds", "When the last successful flush (upload or skip) ended, in Unix seconds; 0 if none has.", gauge,
		func(s *driver.Stats) float64 { return unixSeconds(s.LastFlush) })
	add("last_upload_timestamp_seconds", "When the last upload ended, in Unix seconds; 0 if none has.", gauge,
		func(s *driver.Stats) float64 { return unixSeconds(s.LastUpload) })
	add("last_flush_failed", "1 if the last flush returned an error, else 0.", gauge,
		func(s *driver.Stats) float64 { return bit(s.LastError != nil) })
	add("conflicted", "1 if a flush found the snapshot changed by another writer (periodic flushing has stopped until the database is reopened), else 0.", gauge,
		func(s *driver.Stats) float64 { return bit(s.Conflicted) })
	add("restored", "1 if the first connection restored a snapshot from the bucket, else 0.", gauge,
		func(s *driver.Stats) float64 { return bit(s.Restored) })
	add("restored_bytes", "Size of the restored snapshot, in bytes.", gauge,
		func(s *driver.Stats) float64 { return float64(s.RestoredBytes) })
	add("restore_duration_seconds", "How long the restore (or the reconciliation of a persistent working copy) took.", gauge,
		func(s *driver.Stats) float64 { return s.RestoreDuration.Seconds() })

	add("deltas_total", "Deltas uploaded (sync=log): flushes that shipped only the changed pages.", counter,
		func(s *driver.Stats) float64 { return float64(s.Deltas) })
	add("delta_bytes_total", "Total size of the uploaded deltas, in bytes (sync=log).", counter,
		func(s *driver.Stats) float64 { return float64(s.DeltaBytes) })
	add("compactions_total", "New bases written once the deltas since the last one added up (sync=log).", counter,
		func(s *driver.Stats) float64 { return float64(s.Compactions) })
	add("log_sequence", "Sequence of the last delta in the bucket (sync=log), or of the state a read replica holds.", gauge,
		func(s *driver.Stats) float64 { return float64(s.Seq) })

	add("replica", "1 if the database is a read replica (replica=true), else 0.", gauge,
		func(s *driver.Stats) float64 { return bit(s.Replica) })
	add("replica_refreshes_total", "Refreshes (polls for the writer's next delta) of a read replica.", counter,
		func(s *driver.Stats) float64 { return float64(s.Refreshes) })
	add("replica_refresh_failures_total", "Refreshes of a read replica that returned an error.", counter,
		func(s *driver.Stats) float64 { return float64(s.RefreshFailures) })
	add("replica_downloaded_deltas_total", "Deltas a read replica downloaded.", counter,
		func(s *driver.Stats) float64 { return float64(s.DeltasDownloaded) })
	add("replica_downloaded_bytes_total", "Bytes a read replica downloaded: deltas and bases.", counter,
		func(s *driver.Stats) float64 { return float64(s.BytesDownloaded) })
	add("replica_applied_deltas_total", "Deltas a read replica's refreshes applied.", counter,
		func(s *driver.Stats) float64 { return float64(s.DeltasApplied) })
	add("replica_rebases_total", "Restores of a new base by a read replica whose log had moved on.", counter,
		func(s *driver.Stats) float64 { return float64(s.Rebases) })
	add("replica_last_apply_seconds", "How long a read replica's last apply held its readers off.", gauge,
		func(s *driver.Stats) float64 { return s.LastApply.Seconds() })
	add("replica_last_refresh_timestamp_seconds", "When a read replica's last successful refresh ended, in Unix seconds; 0 if none has.", gauge,
		func(s *driver.Stats) float64 { return unixSeconds(s.LastRefresh) })
	add("replica_writer_flush_timestamp_seconds", "When the writer flushed the state a read replica holds, in Unix seconds; 0 if unknown. time() minus it is the replica's lag.", gauge,
		func(s *driver.Stats) float64 { return unixSeconds(s.WriterFlush) })

	c.invalid = desc("stats_error", "The database's statistics could not be read.")
	return c
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect reads the database's statistics once and sends every metric.
// If they cannot be read, it sends one invalid metric carrying the error,
// which fails the scrape instead of reporting zeros.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, err := driver.GetStats(c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.invalid, err)
		return
	}
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(&st))
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
