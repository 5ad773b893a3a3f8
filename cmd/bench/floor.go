package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
)

// floorMain serves the HTTP floor: the same JSON decoded (into float32
// rows, as a model would need it), a constant answered. Nothing a model
// server does can be cheaper over HTTP in Go.
func floorMain(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	answer := []byte(`{"prediction":[0]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Features  []float32   `json:"features"`
			Instances [][]float32 `json:"instances"`
		}
		if err := json.Unmarshal(body, &req); err != nil || (req.Features == nil && req.Instances == nil) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	return http.ListenAndServe(*listen, mux)
}
