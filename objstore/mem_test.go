package objstore_test

import (
	"testing"

	"github.com/streamhouse/streamhouse/objstore"
)

func TestMemConformance(t *testing.T) {
	runConformance(t, func(*testing.T) objstore.Store { return objstore.NewMem() })
}
