package log

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Names that differ only by '.' against '_' collide, as in Kafka; the
// same name is still ErrTopicExists, and other names are fine.
func TestTopicNameCollision(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "x.y", 1, nil)
	for _, name := range []string{"x_y", "x_y"} {
		_, err := m.CreateTopic(context.Background(), name, 1, nil)
		if !errors.Is(err, ErrInvalidTopic) || !strings.Contains(err.Error(), "Topic 'x_y' collides with existing topic: x.y") {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if _, err := m.CreateTopic(context.Background(), "x.y", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("create x.y again: %v", err)
	}
	mustCreate(t, m, "x-y", 1, nil)
	if _, err := m.Topic("x_y"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("x_y exists after refused creates: %v", err)
	}
}
