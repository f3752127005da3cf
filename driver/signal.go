package driver

import (
	"database/sql"
	"os"
	"os/signal"
	"syscall"
)

// CloseOnSignal closes db (running its final flush) when the process
// receives one of sigs, SIGINT and SIGTERM when none are given, and sends
// Close's result on the returned channel. Go libraries do not install
// signal handlers on their own: call this once in main to opt in.
//
// Once the signal is handled, this handler is removed, so (unless the
// program listens too) a second Ctrl-C ends the process at once. The program decides when to
// exit; the usual pattern is
//
//	done := driver.CloseOnSignal(db)
//	// ... serve ...
//	if err := <-done; err != nil {
//		log.Fatalf("final flush: %v", err)
//	}
//	os.Exit(0)
//
// Servers that must stop accepting requests before the final flush should
// use signal.NotifyContext themselves and call db.Close after shutting
// down, as examples/server does.
func CloseOnSignal(db *sql.DB, sigs ...os.Signal) <-chan error {
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan error, 1)
	go func() {
		<-ch
		signal.Stop(ch)
		done <- db.Close()
	}()
	return done
}
