package catalog_test

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/ortest"
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

// TestSwapMemory swaps between two ~10 MB versions 500 times: RSS over the
// last 50 swaps stays within 10% of where it settled over swaps 50 to 100.
// Single readings swing by tens of megabytes as the allocator's arenas fill
// and empty, so each window is sampled every 5 swaps and the test compares
// the lowest reading at the end with the highest at the start: with no
// leak the end comes back down; sessions that are not destroyed would add
// about 10 MB each, 4.5 GB over the run, and keep every reading high.
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
	rt := ortest.Runtime(t) // the memory ONNX Runtime sessions hold, and give back
	f := newFixture(t, nil, func(o *catalog.Options) { o.MaxPinned, o.Loader = -1, rt })
	f.push("big", "1", testmodels.Linear(n, k, w, make([]float32, k)))
	b := make([]float32, k)
	b[0] = 1
	f.push("big", "2", testmodels.Linear(n, k, w, b))
	f.sync()

	const swaps = 500
	settledMax, finalMin := int64(0), int64(math.MaxInt64)
	for i := 1; i <= swaps; i++ {
		v := "2"
		if i%2 == 0 {
			v = "1"
		}
		f.setStable("big", v)
		f.sync()
		switch {
		case i >= 50 && i <= 100 && i%5 == 0:
			settledMax = max(settledMax, settledRSS(t))
		case i > swaps-50 && i%5 == 0:
			finalMin = min(finalMin, settledRSS(t))
		}
	}
	t.Logf("RSS over the last 50 of %d swaps of a 10 MB model: at least %.1f MiB (swaps 50-100: at most %.1f MiB, %+.1f%%)",
		swaps, float64(finalMin)/(1<<20), float64(settledMax)/(1<<20), 100*(float64(finalMin)/float64(settledMax)-1))
	if float64(finalMin) > 1.10*float64(settledMax) {
		t.Fatalf("RSS never came back below %d bytes over the last 50 swaps (at most %d after settling): sessions are leaking", finalMin, settledMax)
	}
	if got := series(t, f.metrics, "modelgate_model_loads_total"); got["model=big,result=ok,version=1"]+got["model=big,result=ok,version=2"] != swaps+1 {
		t.Fatalf("loads %v, want %d", got, swaps+1)
	}
}
