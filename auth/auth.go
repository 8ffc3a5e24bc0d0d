// Package auth is StreamHouse's one authorizer: it answers "may principal
// P, connected from host H, do operation O on resource R" for both fronts,
// from the ACLs kept in meta, with the semantics of Kafka's
// StandardAuthorizer:
//
//   - a super user (Config.SuperUsers) may do everything;
//   - an ACL applies when its resource pattern covers the resource (a
//     literal of its name, the wildcard literal "*", or a prefix of its
//     name), its principal is P or "User:*", and its host is H or "*";
//   - a DENY that applies to O wins over any ALLOW; a DENY applies to O
//     only if its operation is O or ALL;
//   - an ALLOW applies to O if its operation is O or ALL, or implies O:
//     READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS;
//   - with no applying ACL the answer is no, unless no ACL at all (of any
//     principal, host or operation) covers the resource and
//     Config.AllowEveryoneIfNoACLFound is set.
//
// Answers come from an in-memory copy of the ACLs, indexed by resource
// type and name, so Authorize does a few map lookups and no I/O. The copy
// is reloaded after every change made through this Authorizer and, for
// changes made by other brokers, every Config.ReloadInterval.
//
// Nothing calls it yet: the fronts will, all at once.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// Operation is an ACL operation (Kafka's AclOperation).
type Operation = meta.AclOperation

// ResourceType is the type of a resource (Kafka's ResourceType).
type ResourceType = meta.AclResourceType

// The operations a front asks about.
const (
	All             = meta.AclOpAll
	Read            = meta.AclOpRead
	Write           = meta.AclOpWrite
	Create          = meta.AclOpCreate
	Delete          = meta.AclOpDelete
	Alter           = meta.AclOpAlter
	Describe        = meta.AclOpDescribe
	ClusterAction   = meta.AclOpClusterAction
	DescribeConfigs = meta.AclOpDescribeConfigs
	AlterConfigs    = meta.AclOpAlterConfigs
	IdempotentWrite = meta.AclOpIdempotentWrite
	CreateTokens    = meta.AclOpCreateTokens
	DescribeTokens  = meta.AclOpDescribeTokens
	TwoPhaseCommit  = meta.AclOpTwoPhaseCommit
)

// The resource types a front asks about.
const (
	Topic           = meta.AclTopic
	Group           = meta.AclGroup
	Cluster         = meta.AclCluster
	TransactionalID = meta.AclTransactionalID
	DelegationToken = meta.AclDelegationToken
	User            = meta.AclUser
)

// ClusterName is the name of the one cluster resource, as Kafka names it.
const ClusterName = "kafka-cluster"

// Resource is one concrete resource: a type and a name (never a pattern).
type Resource struct {
	Type ResourceType
	Name string
}

// Store is the part of meta.Store the authorizer uses.
type Store interface {
	CreateAcls(ctx context.Context, acls []meta.AclBinding) error
	ListAcls(ctx context.Context, f meta.AclFilter) ([]meta.AclBinding, error)
	DeleteAcls(ctx context.Context, filters []meta.AclFilter) ([][]meta.AclBinding, error)
}

// DefaultReloadInterval is how often the ACLs are reloaded from the store
// when Config.ReloadInterval is zero.
const DefaultReloadInterval = 10 * time.Second

// Config configures an Authorizer.
type Config struct {
	// Store holds the ACLs; required.
	Store Store
	// SuperUsers are principals ("User:admin") allowed everything.
	SuperUsers []string
	// AllowEveryoneIfNoACLFound is Kafka's allow.everyone.if.no.acl.found:
	// when no ACL covers a resource, allow instead of deny.
	AllowEveryoneIfNoACLFound bool
	// ReloadInterval is how often ACLs are reloaded from Store, so that
	// other brokers' changes arrive; DefaultReloadInterval if zero.
	ReloadInterval time.Duration
	// Clock runs the reloads; clock.Real() if nil.
	Clock clock.Clock
	// Logger gets failed reloads; slog.Default() if nil.
	Logger *slog.Logger
}

// Authorizer answers authorization questions from a cached copy of the
// ACLs. Its methods are safe for concurrent use.
type Authorizer struct {
	store          Store
	superUsers     map[string]struct{}
	allowIfNoACL   bool
	reloadInterval time.Duration
	clk            clock.Clock
	logger         *slog.Logger

	// acls is the current index; replaced whole, never changed.
	acls atomic.Pointer[index]

	// loadMu serializes reloads, so the index installed last is always
	// built from the read that started last.
	loadMu sync.Mutex

	// ctx is cancelled by Close, ending a reload in progress.
	ctx    context.Context
	cancel context.CancelFunc
	// running counts periodic reloads in progress; Close waits for them.
	running sync.WaitGroup
	// mu guards closed and timer.
	mu     sync.Mutex
	closed bool
	timer  clock.Timer
}

// New loads the ACLs from cfg.Store and returns an Authorizer that
// reloads them every cfg.ReloadInterval until Close. It fails if the first
// load fails: an authorizer without its ACLs must not answer.
func New(ctx context.Context, cfg Config) (*Authorizer, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	if cfg.ReloadInterval < 0 {
		return nil, fmt.Errorf("auth: negative reload interval %v", cfg.ReloadInterval)
	}
	a := &Authorizer{
		store:          cfg.Store,
		superUsers:     make(map[string]struct{}, len(cfg.SuperUsers)),
		allowIfNoACL:   cfg.AllowEveryoneIfNoACLFound,
		reloadInterval: cfg.ReloadInterval,
		clk:            cfg.Clock,
		logger:         cfg.Logger,
	}
	for _, u := range cfg.SuperUsers {
		a.superUsers[u] = struct{}{}
	}
	if a.reloadInterval == 0 {
		a.reloadInterval = DefaultReloadInterval
	}
	if a.clk == nil {
		a.clk = clock.Real()
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.timer = a.clk.AfterFunc(a.reloadInterval, a.tick)
	return a, nil
}

// Authorize reports whether principal, connected from host, may do op on
// res (see the package comment). host is the client's IP address as
// netip.Addr.String prints it (IPv4-mapped addresses unmapped). ctx is
// unused for now: the answer never waits.
func (a *Authorizer) Authorize(_ context.Context, principal, host string, op Operation, res Resource) bool {
	if _, ok := a.superUsers[principal]; ok {
		return true
	}
	if !op.Valid() || !res.Type.Valid() {
		return false
	}
	allow, deny, found := a.acls.Load().lookup(principal, host, res)
	bit := opBit(op)
	switch {
	case deny&bit != 0:
		return false
	case allow&bit != 0:
		return true
	}
	return !found && a.allowIfNoACL
}

// AuthorizeAny reports whether principal, connected from host, may do op
// on some resource of type t: Kafka's authorizeByResourceType, which
// InitProducerId uses to let a producer that may WRITE some topic be
// idempotent. Like Kafka it first asks Authorize about a resource named
// "hardcode" (so super users, wildcard ACLs and allow-everyone apply),
// then looks for an ALLOW of op or ALL (implied operations do not count
// here) on a literal or prefixed pattern that no DENY of op or ALL
// dominates: a wildcard DENY dominates everything, a literal DENY the
// literal ALLOW of its name, a prefixed DENY every ALLOW whose name it
// prefixes. It scans the ACLs of type t; it is not for hot paths. host is
// as for Authorize.
func (a *Authorizer) AuthorizeAny(ctx context.Context, principal, host string, op Operation, t ResourceType) bool {
	if a.Authorize(ctx, principal, host, op, Resource{Type: t, Name: "hardcode"}) {
		return true
	}
	if !op.Valid() || !t.Valid() {
		return false
	}
	return a.acls.Load().anyAllowed(principal, host, op, t)
}

// CreateAcls stores the bindings (see meta.Store.CreateAcls) and reloads,
// so this broker's next answers include them. If only the reload fails,
// the bindings are stored and apply from the next successful reload; the
// error wraps ErrStaleCache.
func (a *Authorizer) CreateAcls(ctx context.Context, acls []meta.AclBinding) error {
	if err := a.store.CreateAcls(ctx, acls); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return a.reloadAfterChange(ctx)
}

// DeleteAcls deletes the bindings the filters match (see
// meta.Store.DeleteAcls), returning them per filter, and reloads, so this
// broker's next answers exclude them. If only the reload fails, the
// deletion is done and the bindings are returned with an error wrapping
// ErrStaleCache.
func (a *Authorizer) DeleteAcls(ctx context.Context, filters []meta.AclFilter) ([][]meta.AclBinding, error) {
	deleted, err := a.store.DeleteAcls(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return deleted, a.reloadAfterChange(ctx)
}

// ErrStaleCache says a change was stored but the cached ACLs could not be
// reloaded after it: answers follow it from the next successful reload.
var ErrStaleCache = errors.New("auth: acls changed but the cache is not reloaded yet")

// reloadAfterChange reloads after a change of this Authorizer's.
func (a *Authorizer) reloadAfterChange(ctx context.Context) error {
	if err := a.Reload(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrStaleCache, err)
	}
	return nil
}

// ListAcls returns the stored bindings f matches (see meta.Store.ListAcls).
func (a *Authorizer) ListAcls(ctx context.Context, f meta.AclFilter) ([]meta.AclBinding, error) {
	acls, err := a.store.ListAcls(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return acls, nil
}

// Reload replaces the cached ACLs with the store's. On error the cache
// keeps its previous content.
func (a *Authorizer) Reload(ctx context.Context) error {
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	acls, err := a.store.ListAcls(ctx, meta.AnyAclFilter())
	if err != nil {
		return fmt.Errorf("auth: reload acls: %w", err)
	}
	a.acls.Store(buildIndex(acls))
	return nil
}

// tick is the periodic reload; it re-arms itself until Close.
func (a *Authorizer) tick() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.running.Add(1)
	a.mu.Unlock()
	defer a.running.Done()

	if err := a.Reload(a.ctx); err != nil && a.ctx.Err() == nil {
		a.logger.Warn("auth: periodic acl reload failed; answering from the previous copy", "err", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.timer = a.clk.AfterFunc(a.reloadInterval, a.tick)
	}
}

// Close stops the periodic reload and waits for one in progress to end.
// Authorize keeps answering from the last copy; nothing else may be called
// after.
func (a *Authorizer) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.timer.Stop()
	a.mu.Unlock()
	a.cancel()
	a.running.Wait()
	return nil
}
