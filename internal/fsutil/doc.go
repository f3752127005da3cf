// Package fsutil holds the file-system steps that atomic publishing needs
// in more than one package: a file renamed into place is durable only
// once its directory is synced too.
package fsutil
