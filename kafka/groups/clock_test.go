package groups

import (
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
)

// fakeClock is internal/clock's Fake, started at a fixed time.
type fakeClock = iclock.Fake

func newFakeClock() *fakeClock { return iclock.NewFake(time.UnixMilli(1_700_000_000_000)) }
