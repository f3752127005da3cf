// Package bucketprom exports a bucketsqlite database's flush statistics
// (driver.Stats) as Prometheus metrics. It lives apart from the driver so
// that only programs that import it depend on the Prometheus client.
//
// # Registering a collector
//
// NewCollector returns a prometheus.Collector for one *sql.DB opened with
// the bucketsqlite driver. Name the database with WithDatabase: the name
// becomes the value of the database label on every series, so several
// databases can be registered with one registry.
//
//	db, err := sql.Open("bucketsqlite", "s3://my-bucket/todos.db")
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(bucketprom.NewCollector(db, bucketprom.WithDatabase("todos")))
//	http.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// (prometheus.MustRegister registers with the default registry, the one
// promhttp.Handler serves.) Each scrape calls driver.GetStats once; the
// collector keeps no state of its own and costs nothing between scrapes.
//
// # Metrics
//
// Every name starts with bucketsqlite_ and every series carries the
// database label (plus any labels given with WithConstLabels).
//
//	bucketsqlite_flushes_total                    counter  flush attempts: periodic, explicit and final
//	bucketsqlite_uploads_total                    counter  flushes that uploaded a snapshot
//	bucketsqlite_skips_total                      counter  flushes with nothing to upload
//	bucketsqlite_flush_failures_total             counter  flushes that returned an error
//	bucketsqlite_uploaded_bytes_total             counter  bytes of the uploaded snapshots
//	bucketsqlite_last_flush_timestamp_seconds     gauge    end of the last successful flush, Unix seconds (0: never)
//	bucketsqlite_last_upload_timestamp_seconds    gauge    end of the last upload, Unix seconds (0: never)
//	bucketsqlite_last_flush_failed                gauge    1 if the last flush failed
//	bucketsqlite_conflicted                       gauge    1 once a flush met another writer's snapshot
//	bucketsqlite_restored                         gauge    1 if the first connection restored a snapshot
//	bucketsqlite_restored_bytes                   gauge    size of the restored snapshot
//	bucketsqlite_restore_duration_seconds         gauge    how long the restore or reconciliation took
//	bucketsqlite_deltas_total                     counter  deltas uploaded (sync=log)
//	bucketsqlite_delta_bytes_total                counter  bytes of the uploaded deltas (sync=log)
//	bucketsqlite_compactions_total                counter  new bases written once deltas added up (sync=log)
//	bucketsqlite_log_sequence                     gauge    last delta in the bucket, or the state a replica holds
//
// A read replica (replica=true) reports its refreshes; these are 0 for a
// writer:
//
//	bucketsqlite_replica                                   gauge    1 for a read replica
//	bucketsqlite_replica_refreshes_total                   counter  refreshes (polls)
//	bucketsqlite_replica_refresh_failures_total            counter  refreshes that returned an error
//	bucketsqlite_replica_downloaded_deltas_total           counter  deltas downloaded
//	bucketsqlite_replica_downloaded_bytes_total            counter  bytes downloaded: deltas and bases
//	bucketsqlite_replica_applied_deltas_total              counter  deltas applied by refreshes
//	bucketsqlite_replica_rebases_total                     counter  new bases restored after the log moved on
//	bucketsqlite_replica_last_apply_seconds                gauge    how long the last apply held readers off
//	bucketsqlite_replica_last_refresh_timestamp_seconds    gauge    end of the last successful refresh (0: never)
//	bucketsqlite_replica_writer_flush_timestamp_seconds    gauge    when the writer flushed the state held (0: unknown)
//
// On a replica, alert on
//
//	time() - bucketsqlite_replica_last_refresh_timestamp_seconds > 30   # with refresh_interval=1s
//
// The counters are the driver's own cumulative counts, which start at 0
// when the database is opened: a reopened database starts them again,
// which Prometheus' rate and increase read as a counter reset.
//
// # Alerts worth having
//
// A flush that fails keeps every write in the working copy, but the
// bucket falls behind; a conflict stops periodic flushing until the
// database is reopened. Both deserve a page:
//
//	bucketsqlite_conflicted == 1
//	bucketsqlite_last_flush_failed == 1
//	time() - bucketsqlite_last_flush_timestamp_seconds > 3 * 60   # with flush_interval=1m
//
// The last rule also fires on a database that has not flushed yet since
// it was opened (the gauge is 0 then); guard it with
// bucketsqlite_flushes_total > 0 if that is expected.
//
// # Errors
//
// A *sql.DB that was not opened with the bucketsqlite driver fails every
// scrape with an error matching driver.ErrNotBucketSQLite, rather than
// reporting zeros. A closed database keeps reporting its final
// statistics; unregister its collector when you are done with it.
package bucketprom
