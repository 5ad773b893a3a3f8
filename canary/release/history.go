package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/modelgate/modelgate/signing"
)

// The release history is a hash chain: each event records the sha256 of
// the one before it (Event.Prev), so that no event can be changed,
// removed or reordered without breaking every link after it. An event an
// operator's action appends may also carry who did it (Actor, a claim)
// and a signature by their key (Sig, a proof) over the event, its link
// included: a signed event can be neither forged nor moved.
//
// What the chain cannot show by itself is an old release.json put back
// whole (a replay): its chain is intact, only short. Head names how far a
// history reached; a reader that remembers the Head it last saw (a
// gateway does) refuses a history that does not extend it, and promote
// verify --head checks against a head recorded elsewhere (CI's log).
//
// Hashes and signatures are over the event's canonical JSON: its fields,
// known and unknown (Extra), as one object with sorted keys and numbers
// as they were written, so that every version of this package, knowing
// more fields or fewer, computes the same bytes for the same event.

// EventPayloadType is the DSSE payload type of a signed release event.
const EventPayloadType = "application/vnd.modelgate.release-event+json"

// ActorGateway is the actor of the events the gateways' canary analysis
// appends (a step, a promotion, a rollback), followed by the replica.
const ActorGateway = "gateway"

// EventSigner signs release events; *signing.Signer is one.
type EventSigner interface {
	KeyID() string
	SignPayload(payloadType string, body []byte) (signing.Signature, error)
}

// canonical is e's canonical JSON, without its signature when withSig is
// false (what the signature covers).
func canonical(e Event, withSig bool) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if !withSig {
		delete(m, "sig")
	}
	return json.Marshal(m) // maps are written with sorted keys
}

// EventHash is the sha256 (lowercase hex) of e's canonical JSON, its
// signature included: what the next event's Prev records.
func EventHash(e Event) (string, error) {
	b, err := canonical(e, true)
	if err != nil {
		return "", fmt.Errorf("release: hash event: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// SignedPayload is what an event's signature covers: its canonical JSON
// without the signature.
func SignedPayload(e Event) ([]byte, error) { return canonical(e, false) }

// link sets Prev of the events of h from index from on, where not set.
func link(h []Event, from int) error {
	for i := max(from, 1); i < len(h); i++ {
		if h[i].Prev != "" {
			continue
		}
		prev, err := EventHash(h[i-1])
		if err != nil {
			return err
		}
		h[i].Prev = prev
	}
	return nil
}

// By is T done by Actor: the events T appends record the actor, the
// sha256 of the gate report the decision rested on (GateReport, on the
// events that make a version stable or start its canary), and, with a
// Signer, a signature by its key over each event and its link.
type By struct {
	T          Transition
	Actor      string
	GateReport string
	Signer     EventSigner
}

func (b By) apply(s *State, now time.Time) error {
	n := len(s.History)
	if err := b.T.apply(s, now); err != nil {
		return err
	}
	for i := n; i < len(s.History); i++ {
		e := &s.History[i]
		e.Actor = b.Actor
		if e.Action == ActionStable || e.Action == ActionCanaryStart {
			e.GateReport = b.GateReport
		}
		if err := link(s.History, i); err != nil {
			return err
		}
		if b.Signer == nil {
			continue
		}
		body, err := SignedPayload(*e)
		if err != nil {
			return err
		}
		sig, err := b.Signer.SignPayload(EventPayloadType, body)
		if err != nil {
			return fmt.Errorf("release: sign the %s event: %w", e.Action, err)
		}
		e.Sig = &sig
	}
	return nil
}

// Head is how far a release history reached: its number of events and
// the hash of the last one.
type Head struct {
	Events int    `json:"events"`
	Hash   string `json:"hash,omitempty"`
}

// String is "N:HASH", the form promote prints and verify --head reads.
func (h Head) String() string { return fmt.Sprintf("%d:%s", h.Events, h.Hash) }

// ParseHead reads "N:HASH" (Head.String).
func ParseHead(s string) (Head, error) {
	bad := fmt.Errorf("release: history head %q: want EVENTS:SHA256 as promote prints it", s)
	n, hash, ok := strings.Cut(s, ":")
	events, err := strconv.Atoi(n)
	if !ok || err != nil || events < 0 || (events == 0) != (hash == "") {
		return Head{}, bad
	}
	if _, err := hex.DecodeString(hash); err != nil || (events > 0 && len(hash) != 64) {
		return Head{}, bad
	}
	return Head{Events: events, Hash: hash}, nil
}

// HeadOf is the head of history h.
func HeadOf(h []Event) (Head, error) {
	if len(h) == 0 {
		return Head{}, nil
	}
	hash, err := EventHash(h[len(h)-1])
	if err != nil {
		return Head{}, err
	}
	return Head{Events: len(h), Hash: hash}, nil
}

// ErrRewound: a release history does not extend one seen before: an older
// release.json was put back (a replay), or the history was rewritten.
var ErrRewound = errors.New("release history does not extend the one seen before")

// Extends reports whether history h extends (or is) the history whose
// head was seen: at least as long, with the same event at seen's last
// position. ErrRewound, with the detail, when it does not.
func (seen Head) Extends(h []Event) error {
	if seen.Events == 0 {
		return nil
	}
	if len(h) < seen.Events {
		return fmt.Errorf("%w: it has %d events, %d were seen (the last %s): an older release.json was put back, or events were removed",
			ErrRewound, len(h), seen.Events, short(seen.Hash))
	}
	hash, err := EventHash(h[seen.Events-1])
	if err != nil {
		return err
	}
	if hash != seen.Hash {
		return fmt.Errorf("%w: event %d has sha256 %s, %s was seen there: the history was rewritten",
			ErrRewound, seen.Events, short(hash), short(seen.Hash))
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// EventCheck is what CheckHistory found of one event.
type EventCheck struct {
	Event Event
	Hash  string
	// Linked: Prev names the event before (the first event has none).
	// Unlinked: the event predates the chain (no Prev, written by an
	// earlier modelgate); only events before the first link may be.
	Linked, Unlinked bool
	// KeyID is the trusted key the signature verified under; SigErr why
	// it did not (nil, with no KeyID, when the event is unsigned).
	KeyID  string
	SigErr error
}

// Signed reports whether the event carries a signature that verified.
func (c EventCheck) Signed() bool { return c.KeyID != "" }

// HistoryReport is CheckHistory's verdict on a whole release state.
type HistoryReport struct {
	Events []EventCheck
	Head   Head
	// Problems lists what proves the state was changed outside promote and
	// the gateways: a broken link, a bad signature, a state that
	// disagrees with its history, a head that was not reached. Empty when
	// none.
	Problems []string
}

// CheckHistory verifies s's history: every link of the chain, every
// signature (verify checks one against the trusted keys, e.g.
// signing.Trust.VerifyPayload; nil leaves signatures unchecked), that the
// state's stable version and candidate are what the history says they
// are, and, when want has events, that the history extends want (a head
// recorded earlier: no replay of an older release.json).
func CheckHistory(s State, verify func(payloadType string, body []byte, sig signing.Signature) (string, error), want Head) (HistoryReport, error) {
	var rep HistoryReport
	chained := false
	for i, e := range s.History {
		c := EventCheck{Event: e}
		var err error
		if c.Hash, err = EventHash(e); err != nil {
			return rep, err
		}
		switch {
		case i == 0:
			c.Linked = e.Prev == ""
			if !c.Linked {
				rep.Problems = append(rep.Problems, "event 1 links to an earlier event: events before it were removed")
			}
		case e.Prev == "" && !chained:
			c.Unlinked = true
		case e.Prev == rep.Events[i-1].Hash:
			c.Linked, chained = true, true
		default:
			chained = true
			if e.Prev == "" {
				rep.Problems = append(rep.Problems, fmt.Sprintf("event %d (%s %s) has no link after linked events: it was inserted or rewritten", i+1, e.Action, e.Version))
			} else {
				rep.Problems = append(rep.Problems, fmt.Sprintf("event %d (%s %s) links to %s, not to event %d (%s): events were changed, removed or reordered", i+1, e.Action, e.Version, short(e.Prev), i, short(rep.Events[i-1].Hash)))
			}
		}
		if e.Sig != nil && verify != nil {
			body, err := SignedPayload(e)
			if err != nil {
				return rep, err
			}
			c.KeyID, c.SigErr = verify(EventPayloadType, body, *e.Sig)
			if c.SigErr != nil {
				c.KeyID = ""
				rep.Problems = append(rep.Problems, fmt.Sprintf("event %d (%s %s): signature refused (%s): %v", i+1, e.Action, e.Version, signing.Reason(c.SigErr), c.SigErr))
			}
		}
		rep.Events = append(rep.Events, c)
	}
	var err error
	if rep.Head, err = HeadOf(s.History); err != nil {
		return rep, err
	}
	if err := want.Extends(s.History); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.Problems = append(rep.Problems, Inconsistencies(s)...)
	return rep, nil
}

// Inconsistencies lists where s's stable version and candidate differ
// from what its history says: an edit of release.json that no transition
// made. A state without history (written by hand, or before there was
// one) has none.
func Inconsistencies(s State) []string {
	if len(s.History) == 0 {
		return nil
	}
	var out []string
	stable, candidate := "", ""
	for _, e := range s.History {
		switch e.Action {
		case ActionInitialStable, ActionStable, ActionRollback, ActionCanaryPromote:
			stable = e.Version
			if e.Action == ActionCanaryPromote {
				candidate = ""
			}
		case ActionCanaryStart:
			candidate = e.Version
		case ActionCanaryAbort, ActionCanaryRollback:
			candidate = ""
		}
	}
	if stable != s.Stable {
		out = append(out, fmt.Sprintf("release.json says stable is %q, its history says %q: the state was edited outside promote", s.Stable, stable))
	}
	if candidate != s.Candidate {
		out = append(out, fmt.Sprintf("release.json says the candidate is %q, its history says %q: the state was edited outside promote", s.Candidate, candidate))
	}
	return out
}
