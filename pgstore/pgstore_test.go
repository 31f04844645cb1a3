package pgstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/12fa/12fa/internal/pgtest"
	"github.com/12fa/12fa/internal/testutil"
	"github.com/12fa/12fa/pgstore"
	"github.com/12fa/12fa/state"
	"github.com/12fa/12fa/state/statetest"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, testutil.MainWithSummary))
}

// TestStore_Conformance runs the store conformance suite against a real
// PostgreSQL (a throwaway cluster, or $TWELVEFA_TEST_PG): the same checks
// the file store passes, the crash check killing a writer process that
// appends through its own connections.
func TestStore_Conformance(t *testing.T) {
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T) string { return pgtest.URL(t) },
		Open: func(_ testing.TB, url string) (state.Store, error) {
			return pgstore.Open(context.Background(), pgstore.Config{URL: url}, nil)
		},
	})
}
