package server

import (
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// withBatching turns dynamic batching on for every model.
func withBatching(max int, delay time.Duration, m *serving.BatchMetrics) gwOption {
	return func(c *catalog.Options, _ *Options) {
		c.SessionOptions = func(string) serving.SessionOptions {
			return serving.SessionOptions{Batching: serving.BatchOptions{MaxBatchSize: max, MaxQueueDelay: delay, Metrics: m}}
		}
	}
}

func TestOverloadedIs429WithRetryAfter(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withExtra(func(e *echo.Echo) {
		e.POST("/overloaded", func(echo.Context) error {
			return fmt.Errorf("%w: 1024 requests are already waiting for m version 1; retry later", serving.ErrOverloaded)
		})
	}))
	req, err := http.NewRequest("POST", g.http.URL+"/overloaded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	code, m := g.do("POST", "/overloaded", nil)
	if code != 429 || m["error"] != "overloaded: 1024 requests are already waiting for m version 1; retry later" {
		t.Fatalf("%d %v", code, m)
	}
}

// TestPredictBatched sends concurrent /predict and /v2 requests to a
// batching gateway: each gets its own answer, the same as without
// batching, and a malformed one among them gets its own 400.
func TestPredictBatched(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withBatching(8, 2*time.Millisecond, serving.NewBatchMetrics(reg)))
	rows := [][]float64{malignant, benign}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			row := rows[i%2]
			switch i % 4 {
			case 0, 1:
				code, m := g.do("POST", "/predict", map[string]any{"features": row})
				if code != 200 || !reflect.DeepEqual(m["prediction"], []any{float64(i % 2)}) {
					t.Errorf("predict %d: %d %v", i, code, m)
				}
			case 2:
				code, m := g.do("POST", "/v2/models/breast-cancer/infer", map[string]any{
					"inputs":  []map[string]any{{"name": "features", "shape": []int{1, 30}, "datatype": "FP32", "data": row}},
					"outputs": []map[string]any{{"name": "label"}},
				})
				if code != 200 || len(m["outputs"].([]any)) != 1 {
					t.Errorf("infer %d: %d %v", i, code, m)
				}
			case 3:
				code, m := g.do("POST", "/predict", map[string]any{"features": row[:29]})
				if code != 400 {
					t.Errorf("malformed %d: %d %v", i, code, m)
				}
			}
		})
	}
	wg.Wait()
	if n := testutil.CollectAndCount(reg, "modelgate_batch_size"); n != 1 {
		t.Fatalf("batch-size series: %d", n)
	}
}
