package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// TestMain stops the shared server after the tests and checks for leaked
// goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(Main(m))
}

func TestDBNames(t *testing.T) {
	for _, c := range []struct {
		name string
		seq  int
		test string
		want string
	}{
		{"Plain", 1, "TestX", "t1_testx"},
		{"Subtests", 12, "TestConformance/Postgres/CreateTopic", "t12_testconformance_postgres_createtopic"},
		{"LongKeepsTail", 3, strings.Repeat("A", 100) + "/End", "t3_" + strings.Repeat("a", 44) + "_end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := dbName(c.seq, c.test)
			if got != c.want || len(got) > 63 {
				t.Fatalf("dbName(%d, %q) = %q, want %q (at most 63 bytes)", c.seq, c.test, got, c.want)
			}
		})
	}
}

// TestDBIsFreshAndSeparate checks that each DB call gives an empty
// database of its own on one server.
func TestDBIsFreshAndSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := DB(t), DB(t)
	if a == b {
		t.Fatalf("two DB calls returned the same URL %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table created in one test database shows in another")
	}
}
