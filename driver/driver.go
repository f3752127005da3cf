//go:build cgo

package driver

import (
	"database/sql"
	"database/sql/driver"
	"errors"
)

// DriverName is the name the driver registers with database/sql. It is a
// variable so that a program linking two copies can rename one with
// -ldflags "-X github.com/buckethead/bucketsqlite/driver.DriverName=...".
var DriverName = "bucketsqlite"

func init() {
	sql.Register(DriverName, &Driver{})
}

// Driver is the database/sql driver. It implements driver.DriverContext:
// sql.Open calls OpenConnector once, which parses the DSN; the bucket is
// first touched when the first connection is needed.
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open is not used by database/sql, which calls OpenConnector instead; a
// connection opened outside a connector would have no owner to flush it.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	return nil, errors.New("bucketsqlite: Driver.Open is not supported: use sql.Open or sql.OpenDB(driver.NewConnector(...))")
}

// OpenConnector parses dsn (see ParseDSN) and returns a Connector for it.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return NewConnector(cfg)
}

// boundDriver is what Connector.Driver returns, and so what sql.DB.Driver
// returns: it leads Flush and Stats from a *sql.DB back to its connector.
type boundDriver struct {
	Driver
	c *Connector
}
