package catalog_test

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/testmodels"
)

// rssBytes is the process's resident set size, from /proc/self/status.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func settledRSS(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes(t)
}

// TestSwapMemory swaps between two ~10 MB versions 500 times: the RSS after
// the last swap stays within 10% of where it settled after the first 50.
// ONNX Runtime sessions that are not destroyed after a swap would add about
// 10 MB each and show here at once.
//
// Under the race detector RSS mostly measures the detector's shadow memory,
// so that run skips; `make test` runs this test again without -race.
func TestSwapMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("RSS is not meaningful under -race; `make test` runs TestSwapMemory without it")
	}
	const n, k = 1250, 2000 // 2.5M weights: a 10 MB model
	w := make([]float32, n*k)
	for i := range w {
		w[i] = float32(i%97) / 97
	}
	f := newFixture(t, nil, func(o *catalog.Options) { o.MaxPinned = -1 })
	f.push("big", "1", testmodels.Linear(n, k, w, make([]float32, k)))
	b := make([]float32, k)
	b[0] = 1
	f.push("big", "2", testmodels.Linear(n, k, w, b))
	f.sync()

	const swaps, settle = 500, 50
	var settled int64
	for i := 1; i <= swaps; i++ {
		v := "2"
		if i%2 == 0 {
			v = "1"
		}
		f.setStable("big", v)
		f.sync()
		if i == settle {
			settled = settledRSS(t)
		}
	}
	final := settledRSS(t)
	t.Logf("RSS after %d swaps of a 10 MB model: %.1f MiB (settled after %d: %.1f MiB, %+.1f%%)",
		swaps, float64(final)/(1<<20), settle, float64(settled)/(1<<20), 100*(float64(final)/float64(settled)-1))
	if float64(final) > 1.10*float64(settled) {
		t.Fatalf("RSS grew from %d to %d bytes over %d swaps: sessions are leaking", settled, final, swaps-settle)
	}
	if got := series(t, f.metrics, "modelgate_model_loads_total"); got["model=big,result=ok,version=1"]+got["model=big,result=ok,version=2"] != swaps+1 {
		t.Fatalf("loads %v, want %d", got, swaps+1)
	}
}
