// Command bench measures modelgate against its peers on this machine, in
// one run, with one load generator (wrk) and one duration for every
// contender, and writes bench/RESULTS.md and bench/results.svg.
//
//	go run ./bench -gateway bin/gateway -duration 10s     (make bench)
//
// Contenders, for each workload (a tiny breast-cancer MLP, a digits MLP
// 64-256-256-10 and a compute-bound 4096-wide MLP):
//
//   - the in-process limit: an onnxruntime_go Run loop at batch 1 and 32;
//   - the HTTP floor: a plain Go handler that decodes the same JSON and
//     answers a constant;
//   - modelgate's /predict, /v2 infer and gRPC ModelInfer, without and
//     with batching (gRPC from the bench's own client, "load");
//   - FastAPI + uvicorn serving a scikit-learn MLP of the same architecture.
//
// Every server runs in its own process, alone, on a free loopback port;
// its CPU time and peak RSS come from /proc. A second part (workload
// "image", images.go) sends one 1x3x320x320 FP32 image a request over
// JSON, binary tensors and gRPC to three image models beside the Run loop.
// The subcommands "floor", "loop" and "load" are the floor server, the Run
// loop and the closed-loop client, started by the run itself.
package main

import (
	"fmt"
	"os"
)

func main() {
	var err error
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "floor":
			err = floorMain(os.Args[2:])
		case "loop":
			err = loopMain(os.Args[2:])
		case "load":
			err = loadMain(os.Args[2:])
		default:
			err = runMain(os.Args[1:])
		}
	} else {
		err = runMain(nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
