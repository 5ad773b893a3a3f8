package release_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
)

func TestReleaseStateJSON(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		change func(*release.State)
		want   []string // fragments of the compact re-encoding
		reject []string // fragments it must not have
	}{
		{
			name: "unknown fields survive",
			in: `{"model":"iris","stable":"1","updated":"2030-01-02T03:04:05Z","plan":{"steps":[5,50,100]},"phase":"progressing",
				"history":[{"time":"2030-01-02T03:04:05Z","action":"canary-step","version":"2","weight":5}]}`,
			want: []string{`"plan":{"steps":[5,50,100]}`, `"phase":"progressing"`, `"action":"canary-step","version":"2","weight":5}`},
		},
		{
			name:   "a cleared known field stays cleared",
			in:     `{"model":"iris","stable":"1","candidate":"2","updated":"2030-01-02T03:04:05Z","history":[]}`,
			change: func(s *release.State) { s.Candidate = "" },
			reject: []string{"candidate"},
		},
		{
			name:   "known fields match without regard to case",
			in:     `{"model":"iris","STABLE":"1","updated":"2030-01-02T03:04:05Z","history":[]}`,
			change: func(s *release.State) { s.Stable = "2" },
			want:   []string{`"stable":"2"`},
			reject: []string{"STABLE", `"1"`},
		},
		{
			name: "without unknown fields, the plain encoding",
			in:   `{"model":"iris","stable":"1","updated":"2030-01-02T03:04:05Z","history":[]}`,
			want: []string{`{"model":"iris","stable":"1","updated":"2030-01-02T03:04:05Z","history":[]}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s release.State
			if err := json.Unmarshal([]byte(tc.in), &s); err != nil {
				t.Fatal(err)
			}
			if s.Model != "iris" || !s.Updated.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("decoded %+v", s)
			}
			if tc.change != nil {
				tc.change(&s)
			}
			out, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("encoding %s lacks %s", out, w)
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(string(out), r) {
					t.Errorf("encoding %s has %s", out, r)
				}
			}
			var again release.State
			if err := json.Unmarshal(out, &again); err != nil {
				t.Fatalf("re-decoding %s: %v", out, err)
			}
		})
	}
}

func TestReleaseStateJSONInvalidExtra(t *testing.T) {
	s := release.State{Model: "iris", Extra: map[string]json.RawMessage{"plan": json.RawMessage("{not json")}}
	if _, err := json.Marshal(s); err == nil {
		t.Error("Marshal accepted an Extra field holding invalid JSON")
	}
}
