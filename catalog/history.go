package catalog

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/modelgate/modelgate/canary/release"
)

// errReleaseRefused: a release state read from the registry is not
// believed, and the catalog keeps the one it last accepted.
var errReleaseRefused = errors.New("release state refused")

// historyGuard remembers, per model, the head of the last release history
// the catalog accepted, and refuses a release state that does not extend
// it (an older release.json put back: a replay, or events rewritten or
// removed), whose new events break the history's hash chain, or whose
// stable version or candidate is not what its history says (release.json
// edited by hand). What is loaded keeps serving; Status says why. The
// memory lasts as long as the process: a gateway started after a replay
// has nothing to compare with, which promote verify --head covers.
type historyGuard struct {
	mu     sync.Mutex
	seen   map[string]release.Head
	logged map[string]string // the refusal last logged, per model
}

// check accepts rel for model name, or says why not; reason names the
// refusal for metrics (rewound, broken_chain, inconsistent).
func (g *historyGuard) check(name string, rel release.State) (reason string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen, g.logged = map[string]release.Head{}, map[string]string{}
	}
	seen := g.seen[name]
	head, err := release.HeadOf(rel.History)
	if err != nil {
		return "broken_chain", err
	}
	var problems []string
	if head == seen {
		problems = release.Inconsistencies(rel) // the history is the one accepted
	} else {
		if err := seen.Extends(rel.History); err != nil {
			return "rewound", fmt.Errorf("%w: model %s: %w", errReleaseRefused, name, err)
		}
		rep, err := release.CheckHistory(rel, nil, seen)
		if err != nil {
			return "broken_chain", err
		}
		problems = rep.Problems
	}
	if len(problems) > 0 {
		reason := "broken_chain"
		if len(release.Inconsistencies(rel)) > 0 {
			reason = "inconsistent"
		}
		return reason, fmt.Errorf("%w: model %s: %s", errReleaseRefused, name, strings.Join(problems, "; "))
	}
	g.seen[name] = head
	delete(g.logged, name)
	return "", nil
}

// firstLog reports whether err is new for model name (it is logged once,
// not at every poll).
func (g *historyGuard) firstLog(name string, err error) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logged[name] == err.Error() {
		return false
	}
	g.logged[name] = err.Error()
	return true
}
