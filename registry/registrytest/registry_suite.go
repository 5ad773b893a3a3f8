package registrytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// request returns a push of model with a typical signature.
func request(name, version, model string) registry.PushRequest {
	return registry.PushRequest{
		Name:    name,
		Version: version,
		Model:   []byte(model),
		Inputs:  []wire.TensorSpec{{Name: "features", DType: wire.FP32, Shape: []int64{-1, 30}}},
		Outputs: []wire.TensorSpec{
			{Name: "label", DType: wire.INT64, Shape: []int64{-1}},
			{Name: "probabilities", DType: wire.FP32, Shape: []int64{-1, 2}},
		},
		Metadata: map[string]string{"source": "registrytest", "dataset": "breast-cancer"},
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func push(t *testing.T, f *fixture, req registry.PushRequest) registry.Manifest {
	t.Helper()
	m, created, err := f.reg.Push(t.Context(), req)
	if err != nil {
		t.Fatalf("Push(%s/%s): %v", req.Name, req.Version, err)
	}
	if !created {
		t.Fatalf("Push(%s/%s) created nothing", req.Name, req.Version)
	}
	return m
}

func releaseState(t *testing.T, f *fixture, name string) release.State {
	t.Helper()
	s, err := f.reg.Release(t.Context(), name)
	if err != nil {
		t.Fatalf("Release(%s): %v", name, err)
	}
	return s
}

// equalManifest compares manifests, times by instant.
func equalManifest(a, b registry.Manifest) bool {
	if !a.Created.Equal(b.Created) {
		return false
	}
	a.Created, b.Created = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func testRegistry(t *testing.T, newBucket func(t *testing.T) registry.Bucket) {
	t.Run("push stores a complete version", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		req := request("iris", "1.0.0", "model bytes")
		req.Holdout = []byte("a,b,label\n1,2,0\n")
		m := push(t, f, req)

		want := registry.Manifest{
			Name: "iris", Version: "1.0.0", SHA256: sha("model bytes"), Size: int64(len("model bytes")),
			Created: epoch, Inputs: req.Inputs, Outputs: req.Outputs, Metadata: req.Metadata,
			Holdout: &registry.FileRef{File: "holdout.csv", SHA256: sha(string(req.Holdout)), Size: int64(len(req.Holdout))},
		}
		if !equalManifest(m, want) {
			t.Errorf("Push returned\n%+v\nwant\n%+v", m, want)
		}
		got, err := f.reg.Manifest(ctx, "iris", "1.0.0")
		if err != nil || !equalManifest(got, want) {
			t.Errorf("Manifest = %+v, %v; want %+v", got, err, want)
		}
		data, fm, err := f.reg.Fetch(ctx, "iris", "1.0.0")
		if err != nil || string(data) != "model bytes" || !equalManifest(fm, want) {
			t.Errorf("Fetch = %q, %+v, %v", data, fm, err)
		}
		holdout, err := f.reg.FetchHoldout(ctx, "iris", "1.0.0")
		if err != nil || string(holdout) != string(req.Holdout) {
			t.Errorf("FetchHoldout = %q, %v; want %q", holdout, err, req.Holdout)
		}
		versions, err := f.reg.Versions(ctx, "iris")
		if err != nil || len(versions) != 1 || !equalManifest(versions[0], want) {
			t.Errorf("Versions = %+v, %v", versions, err)
		}
		if models, err := f.reg.Models(ctx); err != nil || !equalStrings(models, []string{"iris"}) {
			t.Errorf("Models = %q, %v; want [iris]", models, err)
		}

		// The layout is part of the contract: other tools read it.
		objects := snapshot(t, f.bucket)
		for key, content := range map[string]string{
			"models/iris/versions/1.0.0/model.onnx":  "model bytes",
			"models/iris/versions/1.0.0/holdout.csv": string(req.Holdout),
		} {
			if objects[key] != content {
				t.Errorf("object %q = %q, want %q", key, objects[key], content)
			}
		}
		var stored registry.Manifest
		if err := json.Unmarshal([]byte(objects["models/iris/versions/1.0.0/manifest.json"]), &stored); err != nil || !equalManifest(stored, want) {
			t.Errorf("manifest.json decodes to %+v, %v", stored, err)
		}
		if _, ok := objects["models/iris/release.json"]; !ok || len(objects) != 4 {
			t.Errorf("objects = %q, want model.onnx, holdout.csv, manifest.json and release.json", slices.Sorted(maps.Keys(objects)))
		}
	})

	t.Run("push without holdout", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		m := push(t, f, request("iris", "1", "m"))
		if m.Holdout != nil {
			t.Errorf("Holdout = %+v, want nil", m.Holdout)
		}
		if _, err := f.reg.FetchHoldout(t.Context(), "iris", "1"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("FetchHoldout: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("same bytes again is a no-op", func(t *testing.T) {
		f := newFixture(t, newBucket, time.Second)
		first := push(t, f, request("iris", "1", "model"))
		before := snapshot(t, f.bucket)

		again := request("iris", "1", "model")
		again.Metadata = map[string]string{"different": "metadata"}
		again.Holdout = []byte("x\n")
		m, created, err := f.reg.Push(t.Context(), again)
		if err != nil || created {
			t.Fatalf("second Push = created %v, %v; want a no-op", created, err)
		}
		if !equalManifest(m, first) {
			t.Errorf("second Push returned %+v, want the first manifest %+v", m, first)
		}
		sameSnapshot(t, before, snapshot(t, f.bucket))
	})

	t.Run("other bytes are refused", func(t *testing.T) {
		f := newFixture(t, newBucket, time.Second)
		push(t, f, request("iris", "1", "model A"))
		before := snapshot(t, f.bucket)

		_, created, err := f.reg.Push(t.Context(), request("iris", "1", "model B"))
		if !errors.Is(err, registry.ErrImmutable) || created {
			t.Fatalf("Push of other bytes = created %v, %v; want ErrImmutable", created, err)
		}
		for _, digest := range []string{sha("model A"), sha("model B")} {
			if !strings.Contains(err.Error(), digest) {
				t.Errorf("error %q does not name digest %s", err, digest)
			}
		}
		sameSnapshot(t, before, snapshot(t, f.bucket))
		if data, _, err := f.reg.Fetch(t.Context(), "iris", "1"); err != nil || string(data) != "model A" {
			t.Errorf("Fetch = %q, %v; want the first bytes", data, err)
		}
	})

	t.Run("first version becomes stable", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		push(t, f, request("iris", "1", "one"))
		s := releaseState(t, f, "iris")
		wantEvents := []release.Event{{Time: epoch, Action: release.ActionInitialStable, Version: "1"}}
		if s.Model != "iris" || s.Stable != "1" || !s.Updated.Equal(epoch) || !equalEvents(s.History, wantEvents) {
			t.Errorf("release after the first push = %+v, want stable 1 with %+v", s, wantEvents)
		}

		push(t, f, request("iris", "2", "two"))
		if s := releaseState(t, f, "iris"); s.Stable != "1" || !equalEvents(s.History, wantEvents) {
			t.Errorf("release after the second push = %+v, want it unchanged", s)
		}
	})

	t.Run("invalid names are refused before any key is built", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		bad := []string{"", "A", "Iris", "../x", "..", ".", "a/b", "/a", "a..b", "-a", "_a", ".a", "a b", "a\x00", "é", strings.Repeat("a", 64)}
		ops := []struct {
			name string
			call func(bad string) error
		}{
			{"Push name", func(s string) error { _, _, err := f.reg.Push(ctx, request(s, "1", "m")); return err }},
			{"Push version", func(s string) error { _, _, err := f.reg.Push(ctx, request("m", s, "m")); return err }},
			{"Manifest name", func(s string) error { _, err := f.reg.Manifest(ctx, s, "1"); return err }},
			{"Manifest version", func(s string) error { _, err := f.reg.Manifest(ctx, "m", s); return err }},
			{"Fetch name", func(s string) error { _, _, err := f.reg.Fetch(ctx, s, "1"); return err }},
			{"Fetch version", func(s string) error { _, _, err := f.reg.Fetch(ctx, "m", s); return err }},
			{"FetchHoldout name", func(s string) error { _, err := f.reg.FetchHoldout(ctx, s, "1"); return err }},
			{"FetchHoldout version", func(s string) error { _, err := f.reg.FetchHoldout(ctx, "m", s); return err }},
			{"Versions", func(s string) error { _, err := f.reg.Versions(ctx, s); return err }},
			{"Release", func(s string) error { _, err := f.reg.Release(ctx, s); return err }},
			{"UpdateRelease", func(s string) error {
				_, err := f.reg.Edit(ctx, s, func(*release.State) error {
					t.Error("UpdateRelease called fn for an invalid name")
					return nil
				})
				return err
			}},
			{"SetStable name", func(s string) error { _, err := f.reg.SetStable(ctx, s, "1", false, ""); return err }},
			{"SetStable version", func(s string) error { _, err := f.reg.SetStable(ctx, "m", s, false, ""); return err }},
		}
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				for _, s := range bad {
					err := op.call(s)
					if !errors.Is(err, registry.ErrInvalidName) {
						t.Errorf("%q: error = %v, want ErrInvalidName", s, err)
						continue
					}
					if msg := err.Error(); !strings.Contains(msg, strconv.Quote(s)) || !strings.Contains(msg, "[a-z0-9]") {
						t.Errorf("%q: error %q does not name the value and the rule", s, msg)
					}
				}
			})
		}
		if n := f.bucket.calls(); n != 0 {
			t.Errorf("invalid names reached the bucket %d times", n)
		}
		longest := strings.Repeat("a", 63)
		push(t, f, request(longest, longest, "m"))
	})

	t.Run("output kinds are stored with the version", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		req := request("iris", "1", "m")
		req.OutputKinds = map[string]semantics.Output{
			"label":         semantics.Of(semantics.Label),
			"probabilities": semantics.Of(semantics.Probabilities),
		}
		push(t, f, req)
		got, err := f.reg.Manifest(ctx, "iris", "1")
		if err != nil || !reflect.DeepEqual(got.OutputKinds, req.OutputKinds) {
			t.Errorf("Manifest's OutputKinds = %+v, %v; want %+v", got.OutputKinds, err, req.OutputKinds)
		}
		raw := snapshot(t, f.bucket)["models/iris/versions/1/manifest.json"]
		if !strings.Contains(raw, `"output_kinds"`) || !strings.Contains(raw, `"kind": "probabilities"`) {
			t.Errorf("manifest.json lacks the output kinds:\n%s", raw)
		}
		// A version pushed without kinds has none, and its manifest does
		// not mention them (as those written before kinds existed).
		push(t, f, request("iris", "2", "other"))
		if m, err := f.reg.Manifest(ctx, "iris", "2"); err != nil || m.OutputKinds != nil {
			t.Errorf("Manifest of a version without kinds = %+v, %v", m.OutputKinds, err)
		}
		if raw := snapshot(t, f.bucket)["models/iris/versions/2/manifest.json"]; strings.Contains(raw, "output_kinds") {
			t.Errorf("manifest.json of a version without kinds:\n%s", raw)
		}
	})

	t.Run("malformed push requests are refused", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		tests := []struct {
			name   string
			change func(*registry.PushRequest)
		}{
			{"empty model", func(r *registry.PushRequest) { r.Model = nil }},
			{"input without a name", func(r *registry.PushRequest) { r.Inputs[0].Name = "" }},
			{"duplicate outputs", func(r *registry.PushRequest) { r.Outputs[1].Name = r.Outputs[0].Name }},
			{"onnx datatype name", func(r *registry.PushRequest) { r.Inputs[0].DType = "float" }},
			{"negative dimension", func(r *registry.PushRequest) { r.Outputs[0].Shape = []int64{-2} }},
			{"kind of an output it does not have", func(r *registry.PushRequest) {
				r.OutputKinds = map[string]semantics.Output{"logits": semantics.Of(semantics.Probabilities)}
			}},
			{"kind that does not fit its output", func(r *registry.PushRequest) {
				r.OutputKinds = map[string]semantics.Output{"label": semantics.Of(semantics.Probability)}
			}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := request("iris", "1", "m")
				tc.change(&req)
				if _, _, err := f.reg.Push(t.Context(), req); !errors.Is(err, registry.ErrInvalidRequest) {
					t.Errorf("error = %v, want ErrInvalidRequest", err)
				}
			})
		}
		if n := f.bucket.calls(); n != 0 {
			t.Errorf("malformed requests reached the bucket %d times", n)
		}
	})

	t.Run("missing things are not found", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		push(t, f, request("iris", "1", "m"))
		tests := []struct {
			name string
			call func() error
		}{
			{"Manifest of a missing model", func() error { _, err := f.reg.Manifest(ctx, "ghost", "1"); return err }},
			{"Manifest of a missing version", func() error { _, err := f.reg.Manifest(ctx, "iris", "2"); return err }},
			{"Fetch", func() error { _, _, err := f.reg.Fetch(ctx, "iris", "2"); return err }},
			{"FetchHoldout", func() error { _, err := f.reg.FetchHoldout(ctx, "iris", "2"); return err }},
			{"Versions", func() error { _, err := f.reg.Versions(ctx, "ghost"); return err }},
			{"Release", func() error { _, err := f.reg.Release(ctx, "ghost"); return err }},
			{"SetStable of a missing model", func() error { _, err := f.reg.SetStable(ctx, "ghost", "1", false, ""); return err }},
			{"SetStable of a missing version", func() error { _, err := f.reg.SetStable(ctx, "iris", "2", true, "x"); return err }},
		}
		before := snapshot(t, f.bucket)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.call(); !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("error = %v, want ErrNotFound", err)
				}
			})
		}
		sameSnapshot(t, before, snapshot(t, f.bucket))
	})

	t.Run("fetch verifies the stored bytes", func(t *testing.T) {
		const model = "the model bytes"
		const holdout = "x,label\n1,0\n"
		tests := []struct {
			name    string
			key     string
			content string
			holdout bool
			want    string // in the error message
		}{
			{"flipped model byte", "model.onnx", "the model bytez", false, "want sha256 " + sha(model)},
			{"truncated model", "model.onnx", "the model", false, "want 15 bytes"},
			{"longer model", "model.onnx", model + "!", false, "want 15 bytes"},
			{"flipped holdout byte", "holdout.csv", "x,label\n1,1\n", true, "want sha256 " + sha(holdout)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, newBucket, 0)
				req := request("iris", "1", model)
				req.Holdout = []byte(holdout)
				push(t, f, req)
				upload(t, f.bucket, "models/iris/versions/1/"+tc.key, tc.content)

				var err error
				if tc.holdout {
					_, err = f.reg.FetchHoldout(t.Context(), "iris", "1")
				} else {
					_, _, err = f.reg.Fetch(t.Context(), "iris", "1")
				}
				if !errors.Is(err, registry.ErrDigestMismatch) {
					t.Fatalf("error = %v, want ErrDigestMismatch", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
			})
		}
	})

	t.Run("set stable", func(t *testing.T) {
		f := newFixture(t, newBucket, time.Second)
		ctx := t.Context()
		for _, v := range []string{"1", "2", "3"} {
			push(t, f, request("iris", v, "model "+v))
		}

		s, err := f.reg.SetStable(ctx, "iris", "2", false, "gates passed")
		if err != nil {
			t.Fatal(err)
		}
		last := s.History[len(s.History)-1]
		if s.Stable != "2" || len(s.History) != 2 || last.Action != release.ActionStable || last.Version != "2" ||
			last.From != "1" || last.Forced || last.Reason != "gates passed" || last.Time.IsZero() || s.Updated.Before(last.Time) {
			t.Errorf("after SetStable(2): %+v", s)
		}
		if stored := releaseState(t, f, "iris"); !reflect.DeepEqual(stored, s) {
			t.Errorf("Release = %+v, SetStable returned %+v", stored, s)
		}

		same, err := f.reg.SetStable(ctx, "iris", "2", true, "again")
		if err != nil || !reflect.DeepEqual(same, s) || !reflect.DeepEqual(releaseState(t, f, "iris"), s) {
			t.Errorf("SetStable of the stable version = %+v, %v; want no change from %+v", same, err, s)
		}

		s, err = f.reg.SetStable(ctx, "iris", "3", true, "hotfix")
		if err != nil {
			t.Fatal(err)
		}
		last = s.History[len(s.History)-1]
		if s.Stable != "3" || len(s.History) != 3 || last.From != "2" || !last.Forced || last.Reason != "hotfix" {
			t.Errorf("after a forced SetStable(3): %+v", s)
		}

		if _, err := f.reg.SetStable(ctx, "iris", "9", true, "typo"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("SetStable of an unknown version: error = %v, want ErrNotFound", err)
		}
		if stored := releaseState(t, f, "iris"); !reflect.DeepEqual(stored, s) {
			t.Errorf("a refused SetStable changed the release state to %+v", stored)
		}
	})

	t.Run("concurrent release updates all land", func(t *testing.T) {
		f := newFixture(t, newBucket, time.Millisecond)
		push(t, f, request("iris", "1", "m"))
		errs := race(concurrency, func(i int) error {
			_, err := f.reg.Edit(t.Context(), "iris", func(s *release.State) error {
				s.History = append(s.History, release.Event{Action: "test", Version: strconv.Itoa(i)})
				return nil
			})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("updater %d: %v", i, err)
			}
		}
		s := releaseState(t, f, "iris")
		seen := make(map[string]int)
		for _, e := range s.History[1:] {
			seen[e.Version]++
		}
		if len(s.History) != concurrency+1 || len(seen) != concurrency {
			t.Errorf("history has %d events for %d distinct updaters, want %d for %d: %+v",
				len(s.History), len(seen), concurrency+1, concurrency, s.History)
		}
	})

	t.Run("update release", func(t *testing.T) {
		tests := []struct {
			name    string
			fn      func(*release.State) error
			wantErr error
		}{
			{"fn error aborts", func(s *release.State) error { s.Stable = "2"; return errBoom }, errBoom},
			{"history cannot be rewritten", func(s *release.State) error {
				s.History[0].Reason = "rewritten"
				s.History = append(s.History, release.Event{Action: "test"})
				return nil
			}, release.ErrRefused},
			{"history cannot be dropped", func(s *release.State) error { s.History = nil; s.Stable = "2"; return nil }, release.ErrRefused},
			{"no change writes nothing", func(*release.State) error { return nil }, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, newBucket, 0)
				push(t, f, request("iris", "1", "m"))
				push(t, f, request("iris", "2", "n"))
				before := snapshot(t, f.bucket)
				if _, err := f.reg.Edit(t.Context(), "iris", tc.fn); !errors.Is(err, tc.wantErr) {
					t.Errorf("error = %v, want %v", err, tc.wantErr)
				}
				sameSnapshot(t, before, snapshot(t, f.bucket))
			})
		}

		t.Run("absent state", func(t *testing.T) {
			f := newFixture(t, newBucket, 0)
			ctx := t.Context()
			s, err := f.reg.Edit(ctx, "fresh", func(s *release.State) error {
				if s.Model != "fresh" || s.Stable != "" || len(s.History) != 0 {
					t.Errorf("fn got %+v, want the zero state of model fresh", s)
				}
				return nil
			})
			if err != nil || s.Model != "fresh" {
				t.Errorf("UpdateRelease without a change = %+v, %v", s, err)
			}
			if _, err := f.reg.Release(ctx, "fresh"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("an update without a change created the state: Release error = %v", err)
			}
			s, err = f.reg.Edit(ctx, "fresh", func(s *release.State) error {
				s.Model = "renamed"
				s.Candidate = "2"
				return nil
			})
			if err != nil || s.Model != "fresh" || s.Candidate != "2" || !s.Updated.Equal(epoch) {
				t.Errorf("UpdateRelease = %+v, %v; want model fresh, candidate 2, updated now", s, err)
			}
			if stored := releaseState(t, f, "fresh"); !reflect.DeepEqual(stored, s) {
				t.Errorf("Release = %+v, want %+v", stored, s)
			}
		})
	})

	t.Run("unknown release fields survive an update", func(t *testing.T) {
		f := newFixture(t, newBucket, time.Second)
		push(t, f, request("iris", "1", "m"))
		push(t, f, request("iris", "2", "n"))

		// A newer version of the package wrote fields this one does not know.
		const key = "models/iris/release.json"
		var doc map[string]any
		data, _ := readVersioned(t, f.bucket, key)
		if err := json.Unmarshal([]byte(data), &doc); err != nil {
			t.Fatal(err)
		}
		doc["plan"] = map[string]any{"steps": []any{5.0, 25.0, 100.0}, "interval": "5m"}
		doc["phase"] = "progressing"
		doc["history"].([]any)[0].(map[string]any)["weight"] = 5.0
		newer, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		upload(t, f.bucket, key, string(newer))

		s, err := f.reg.SetStable(t.Context(), "iris", "2", false, "")
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Extra["phase"]) != `"progressing"` || string(s.History[0].Extra["weight"]) != "5" {
			t.Errorf("Extra = %s, event Extra = %s", s.Extra, s.History[0].Extra)
		}
		var after map[string]any
		data, _ = readVersioned(t, f.bucket, key)
		if err := json.Unmarshal([]byte(data), &after); err != nil {
			t.Fatal(err)
		}
		history := after["history"].([]any)
		if !reflect.DeepEqual(after["plan"], doc["plan"]) || after["phase"] != "progressing" ||
			history[0].(map[string]any)["weight"] != 5.0 || len(history) != 2 || after["stable"] != "2" {
			t.Errorf("release.json after the update:\n%s", data)
		}
	})

	t.Run("concurrent pushes of one version", func(t *testing.T) {
		t.Run("same bytes", func(t *testing.T) {
			f := newFixture(t, newBucket, time.Second)
			manifests := make([]registry.Manifest, concurrency)
			created := make([]bool, concurrency)
			errs := race(concurrency, func(i int) error {
				var err error
				manifests[i], created[i], err = f.reg.Push(t.Context(), request("iris", "1", "same"))
				return err
			})
			n := 0
			for i, err := range errs {
				if err != nil {
					t.Errorf("pusher %d: %v", i, err)
				} else if !equalManifest(manifests[i], manifests[0]) {
					t.Errorf("pusher %d got manifest %+v, pusher 0 got %+v", i, manifests[i], manifests[0])
				}
				if created[i] {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d pushes created the version, want 1", n)
			}
		})
		t.Run("different bytes", func(t *testing.T) {
			f := newFixture(t, newBucket, time.Second)
			errs := race(concurrency, func(i int) error {
				_, _, err := f.reg.Push(t.Context(), request("iris", "1", fmt.Sprintf("model %d", i)))
				return err
			})
			winner := onlyWinner(t, errs, registry.ErrImmutable, registry.ErrConflict)
			if winner < 0 {
				return
			}
			data, m, err := f.reg.Fetch(t.Context(), "iris", "1")
			if want := fmt.Sprintf("model %d", winner); err != nil || string(data) != want {
				t.Errorf("Fetch = %q, %v; want the winner's %q", data, err, want)
			}
			if s := releaseState(t, f, "iris"); s.Stable != "1" || m.SHA256 != sha(string(data)) {
				t.Errorf("release = %+v, manifest = %+v", s, m)
			}
		})
	})

	t.Run("versions are ordered by creation, then by version", func(t *testing.T) {
		tests := []struct {
			name  string
			step  time.Duration
			order []string // push order
			want  []string
		}{
			{"distinct times", time.Second, []string{"2", "10", "1"}, []string{"2", "10", "1"}},
			{"same time", 0, []string{"b", "c", "a"}, []string{"a", "b", "c"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, newBucket, tc.step)
				for _, v := range tc.order {
					push(t, f, request("iris", v, "model "+v))
				}
				ms, err := f.reg.Versions(t.Context(), "iris")
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range ms {
					got = append(got, m.Version)
				}
				if !equalStrings(got, tc.want) {
					t.Errorf("Versions = %q, want %q", got, tc.want)
				}
			})
		}
	})

	t.Run("models are sorted", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		for _, name := range []string{"b", "a-b", "c.d", "a"} {
			push(t, f, request(name, "1", "m"))
		}
		if got, err := f.reg.Models(t.Context()); err != nil || !equalStrings(got, []string{"a", "a-b", "b", "c.d"}) {
			t.Errorf("Models = %q, %v", got, err)
		}
	})

	t.Run("incomplete pushes", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		// Pushes that stopped after the model, before the manifest.
		upload(t, f.bucket, "models/half/versions/1/model.onnx", "crashed")
		push(t, f, request("full", "1", "m"))
		upload(t, f.bucket, "models/full/versions/2/model.onnx", "crashed")

		if got, err := f.reg.Models(ctx); err != nil || !equalStrings(got, []string{"full"}) {
			t.Errorf("Models = %q, %v; want [full]", got, err)
		}
		if _, err := f.reg.Versions(ctx, "half"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Versions(half): error = %v, want ErrNotFound", err)
		}
		if ms, err := f.reg.Versions(ctx, "full"); err != nil || len(ms) != 1 || ms[0].Version != "1" {
			t.Errorf("Versions(full) = %+v, %v; want version 1 only", ms, err)
		}

		before := snapshot(t, f.bucket)
		if _, _, err := f.reg.Push(ctx, request("full", "2", "other")); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("Push over a half-pushed version with other bytes: error = %v, want ErrConflict", err)
		}
		sameSnapshot(t, before, snapshot(t, f.bucket))

		m, created, err := f.reg.Push(ctx, request("half", "1", "crashed"))
		if err != nil || !created || m.SHA256 != sha("crashed") {
			t.Fatalf("Push completing a half-pushed version = %+v, %v, %v", m, created, err)
		}
		if s := releaseState(t, f, "half"); s.Stable != "1" {
			t.Errorf("completed version is not stable: %+v", s)
		}
	})

	t.Run("a data profile lives beside its version and may be replaced", func(t *testing.T) {
		f := newFixture(t, newBucket, 0)
		ctx := t.Context()
		push(t, f, request("iris", "1", "model bytes"))
		if _, err := f.reg.Profile(ctx, "iris", "1"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Profile before any: error = %v, want ErrNotFound", err)
		}
		for _, p := range []string{`{"format":1,"features":[{"name":"a"}]}`, `{"format":1,"features":[{"name":"b"}]}`} {
			if err := f.reg.PutProfile(ctx, "iris", "1", []byte(p)); err != nil {
				t.Fatalf("PutProfile: %v", err)
			}
			if got, err := f.reg.Profile(ctx, "iris", "1"); err != nil || string(got) != p {
				t.Errorf("Profile = %q, %v; want %q", got, err, p)
			}
		}
		if got := get(t, f.bucket, "models/iris/versions/1/profile.json"); !strings.Contains(got, `"b"`) {
			t.Errorf("profile.json holds %q", got)
		}
		for _, bad := range []string{"not json", `{"format":1}`, `[1]`} {
			if err := f.reg.PutProfile(ctx, "iris", "1", []byte(bad)); !errors.Is(err, registry.ErrInvalidRequest) {
				t.Errorf("PutProfile(%s): error = %v, want ErrInvalidRequest", bad, err)
			}
		}
		if err := f.reg.PutProfile(ctx, "iris", "9", []byte(`{"features":[]}`)); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("PutProfile of a missing version: error = %v, want ErrNotFound", err)
		}
		// The version itself is unchanged.
		if data, _, err := f.reg.Fetch(ctx, "iris", "1"); err != nil || string(data) != "model bytes" {
			t.Errorf("Fetch = %q, %v", data, err)
		}
	})
}

func equalEvents(a, b []release.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Time.Equal(y.Time) {
			return false
		}
		x.Time, y.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
