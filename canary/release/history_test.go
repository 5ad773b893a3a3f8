package release

import (
	"crypto"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/signing"
)

func mustSigner(t *testing.T) *signing.Signer {
	t.Helper()
	s, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifierOf verifies event signatures against the signers' public keys.
func verifierOf(t *testing.T, signers ...*signing.Signer) func(string, []byte, signing.Signature) (string, error) {
	t.Helper()
	var pubs []crypto.PublicKey
	for _, s := range signers {
		pubs = append(pubs, s.Public())
	}
	ks, err := signing.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ks.VerifyPayload
}

// signedHistory is model m: push 1, a signed stable change to 2, a
// signed canary of 3 that a gateway steps and an operator aborts.
func signedHistory(t *testing.T, s *signing.Signer) State {
	return stateAt(t,
		Push{"1"},
		By{T: SetStable{Version: "2", Gate: GatePassed}, Actor: "alice", GateReport: strings.Repeat("a", 64), Signer: s},
		By{T: StartCanary{Version: "3", Plan: plan(), Gate: GatePassed}, Actor: "ci", GateReport: strings.Repeat("b", 64), Signer: s},
		By{T: Abort{Reason: "enough"}, Actor: "bob", Signer: s},
	)
}

func TestHistoryIsAChainOfSignedEvents(t *testing.T) {
	s := mustSigner(t)
	st := signedHistory(t, s)
	if len(st.History) != 4 {
		t.Fatalf("history has %d events, want 4", len(st.History))
	}
	for i, e := range st.History {
		if i == 0 {
			if e.Prev != "" || e.Sig != nil {
				t.Errorf("the push event has prev %q sig %v, want neither", e.Prev, e.Sig)
			}
			continue
		}
		want, err := EventHash(st.History[i-1])
		if err != nil {
			t.Fatal(err)
		}
		if e.Prev != want {
			t.Errorf("event %d prev %q, want %q", i+1, e.Prev, want)
		}
		if e.Sig == nil || e.Sig.KeyID != s.KeyID() {
			t.Errorf("event %d sig %+v, want one by %s", i+1, e.Sig, s.KeyID())
		}
	}
	if got := st.History[1]; got.Actor != "alice" || got.GateReport != strings.Repeat("a", 64) {
		t.Errorf("stable event actor %q gate report %q", got.Actor, got.GateReport)
	}
	if got := st.History[3]; got.GateReport != "" {
		t.Errorf("the abort records gate report %q, want none", got.GateReport)
	}
	rep, err := CheckHistory(st, verifierOf(t, s), Head{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems in an untouched history: %v", rep.Problems)
	}
	for i, c := range rep.Events {
		if !c.Linked || (i > 0 && !c.Signed()) {
			t.Errorf("event %d: linked %v signed %v (%v)", i+1, c.Linked, c.Signed(), c.SigErr)
		}
	}
	if rep.Head.Events != 4 || rep.Head.Hash != rep.Events[3].Hash {
		t.Errorf("head %+v", rep.Head)
	}
	// The history survives a round trip through release.json, and a
	// field this version does not know changes no hash.
	b, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode("m", b)
	if err != nil {
		t.Fatal(err)
	}
	if rep2, _ := CheckHistory(back, verifierOf(t, s), rep.Head); len(rep2.Problems) != 0 {
		t.Fatalf("problems after a round trip: %v", rep2.Problems)
	}
}

// TestCheckHistoryFindsTampering changes a signed history the ways a
// writer of the bucket could, and expects each to be named.
func TestCheckHistoryFindsTampering(t *testing.T) {
	s, stranger := mustSigner(t), mustSigner(t)
	good := signedHistory(t, s)
	goodHead, err := HeadOf(good.History)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(st *State)) State {
		b, err := Encode(good)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Decode("m", b)
		if err != nil {
			t.Fatal(err)
		}
		f(&st)
		return st
	}
	tests := []struct {
		name string
		st   State
		want Head
		text string
	}{
		{"reason rewritten", edit(func(st *State) { st.History[3].Reason = "nothing to see" }), Head{},
			"signature refused (bad_signature)"},
		{"actor rewritten", edit(func(st *State) { st.History[1].Actor = "mallory" }), Head{},
			"signature refused (bad_signature)"},
		{"event removed", edit(func(st *State) { st.History = slices.Delete(st.History, 1, 2) }), Head{},
			"links to"},
		{"events reordered", edit(func(st *State) { st.History[2], st.History[3] = st.History[3], st.History[2] }), Head{},
			"links to"},
		{"first events removed", edit(func(st *State) { st.History = st.History[1:] }), Head{},
			"events before it were removed"},
		{"stable edited without an event", edit(func(st *State) { st.Stable = "1" }), Head{},
			`says stable is "1", its history says "2"`},
		{"candidate edited without an event", edit(func(st *State) { st.Candidate = "3" }), Head{},
			`the candidate is "3"`},
		{"event re-signed by another key", edit(func(st *State) {
			e := &st.History[2]
			body, _ := SignedPayload(*e)
			sig, _ := stranger.SignPayload(EventPayloadType, body)
			e.Sig = &sig
		}), Head{}, "signature refused (untrusted_key)"},
		{"replay of an older release.json", stateAt(t, Push{"1"},
			By{T: SetStable{Version: "2", Gate: GatePassed}, Actor: "alice", GateReport: strings.Repeat("a", 64), Signer: s}),
			goodHead, "an older release.json was put back"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := CheckHistory(tc.st, verifierOf(t, s), tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, tc.text) }) {
				t.Fatalf("problems %q, want one containing %q", rep.Problems, tc.text)
			}
		})
	}
}

func TestHeadExtends(t *testing.T) {
	s := mustSigner(t)
	st := signedHistory(t, s)
	for n := 0; n <= len(st.History); n++ {
		h, err := HeadOf(st.History[:n])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Extends(st.History); err != nil {
			t.Errorf("the head of the first %d events: %v", n, err)
		}
		back, err := ParseHead(h.String())
		if err != nil || back != h {
			t.Errorf("ParseHead(%q) = %+v, %v", h.String(), back, err)
		}
	}
	full, _ := HeadOf(st.History)
	if err := full.Extends(st.History[:2]); !errors.Is(err, ErrRewound) {
		t.Errorf("a shorter history: %v, want ErrRewound", err)
	}
	// Same length, another past: a history rewritten from event 2 on.
	other := stateAt(t, Push{"1"}, SetStable{Version: "2", Gate: GatePassed}, SetStable{Version: "3", Gate: GatePassed}, SetStable{Version: "4", Gate: GatePassed})
	if err := full.Extends(other.History); !errors.Is(err, ErrRewound) || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("a rewritten history: %v, want ErrRewound", err)
	}
	for _, bad := range []string{"", "x", "3", "3:abc", "-1:" + strings.Repeat("a", 64)} {
		if _, err := ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}

// TestHistoryBeforeTheChain reads a release.json an earlier modelgate
// wrote (no links): its events are unlinked, not a problem, and the next
// event links to the last of them.
func TestHistoryBeforeTheChain(t *testing.T) {
	old := `{"model":"m","stable":"2","updated":"2026-01-01T00:00:00Z","history":[
	 {"time":"2026-01-01T00:00:00Z","action":"initial-stable","version":"1"},
	 {"time":"2026-01-01T00:01:00Z","action":"stable","version":"2","from":"1","future":{"n":1.50}}]}`
	st, err := Decode("m", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Apply(st, SetStable{Version: "3", Gate: GatePassed}, at0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := CheckHistory(next, nil, Head{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if !rep.Events[1].Unlinked || !rep.Events[2].Linked {
		t.Errorf("unlinked/linked: %+v", rep.Events)
	}
	// The unknown field is hashed as written: 1.50 stays 1.50.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(next.History[1].Extra["future"], &raw); err != nil || string(raw["n"]) != "1.50" {
		t.Errorf("the unknown field became %s", next.History[1].Extra["future"])
	}
}

func TestTickEventsNameTheGateway(t *testing.T) {
	st := canaryOf2(t)
	d := Decision{Changed: true, Next: st.Canary.Progress, Reason: "step passed"}
	d.Next.Step++
	d.Next.Weight = st.Canary.Plan.Steps[1]
	next, err := Apply(st, Tick{Epoch: st.Canary.Epoch(), NotBefore: at0.Add(-24 * 60 * 60 * 1e9), Decision: d, Analysis: Analysis{Time: at1, Replica: "gw-1"}}, at1)
	if err != nil {
		t.Fatal(err)
	}
	if e := lastOf(next); e.Action != ActionCanaryStep || e.Actor != "gateway gw-1" || e.Prev == "" {
		t.Errorf("tick event %+v", e)
	}
}
