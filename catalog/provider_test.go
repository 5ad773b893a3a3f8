package catalog_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
)

// measuredModel is a fake version as ort.providers auto leaves it: on
// provider, with the warm-up times measured and the reason.
func measuredModel(seed float32, provider string, warmup map[string]time.Duration, reason string) []byte {
	return servingtest.Spec{Kind: "linear", N: 4, K: 2,
		W: []float32{1, -1, 0.5, -0.5, seed, -seed, 0.25, 0.75}, B: []float32{0.1, -0.1},
		Provider: provider, Warmup: warmup, Reason: reason}.Bytes()
}

// TestProviderChoice: the choice of a version loaded with providers auto
// shows in Status (/readyz) and in modelgate_provider_warmup_seconds, whose
// series go when the version unloads; a version loaded with a configured
// order shows none.
func TestProviderChoice(t *testing.T) {
	f := newFixture(t, nil)
	reason := "median warm-up run 3.4ms on cuda, 1.2ms on cpu; chose cpu, the faster"
	f.push("m", "1", measuredModel(1, serving.ProviderCPU,
		map[string]time.Duration{serving.ProviderCPU: 1200 * time.Microsecond, serving.ProviderCUDA: 3400 * time.Microsecond}, reason))
	f.push("m", "2", modelBytes("2"))
	f.setStable("m", "1")
	f.sync()

	ms := f.modelStatus("m")
	want := &serving.ProviderChoice{Warmup: map[string]time.Duration{"cpu": 1200 * time.Microsecond, "cuda": 3400 * time.Microsecond}, Reason: reason}
	if ms.Provider != "cpu" || !reflect.DeepEqual(ms.ProviderChoice, want) {
		t.Fatalf("status = %+v, want provider cpu and choice %+v", ms, want)
	}
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	if w := `"provider_choice":{"warmup_seconds":{"cpu":0.0012,"cuda":0.0034},"reason":"` + reason + `"}`; !strings.Contains(string(b), w) {
		t.Errorf("/readyz entry %s\ndoes not hold %s", b, w)
	}
	wantSeries := map[string]float64{
		"model=m,provider=cpu,version=1":  0.0012,
		"model=m,provider=cuda,version=1": 0.0034,
	}
	if got := series(t, f.metrics, "modelgate_provider_warmup_seconds"); !reflect.DeepEqual(got, wantSeries) {
		t.Errorf("modelgate_provider_warmup_seconds = %v, want %v", got, wantSeries)
	}

	f.setStable("m", "2")
	f.sync()
	if ms := f.modelStatus("m"); ms.Version != "2" || ms.ProviderChoice != nil {
		t.Errorf("status after the swap = %+v, want version 2 and no choice", ms)
	}
	if b, _ := json.Marshal(f.modelStatus("m")); strings.Contains(string(b), "provider_choice") {
		t.Errorf("/readyz entry %s shows a choice for a version loaded in order", b)
	}
	if got := series(t, f.metrics, "modelgate_provider_warmup_seconds"); len(got) != 0 {
		t.Errorf("modelgate_provider_warmup_seconds after version 1 unloaded = %v, want no series", got)
	}
}
