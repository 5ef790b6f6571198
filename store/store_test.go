package store_test

import (
	"testing"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ferry.Store { return storetest.OpenSQLite(t) })
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ferry.Store { return storetest.OpenPostgres(t) })
}
