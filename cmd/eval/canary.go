package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/prometheus/client_golang/prometheus"
)

// The simulated traffic of the canary evaluation: what a gateway with the
// default configuration sees.
const (
	// simRate is requests per second; a tick sees simRate × the tick period.
	simRate = 100
	// simInputs is the population of distinct inputs; requests draw them
	// by a Zipf law (exponent simZipf), so that most traffic repeats a few
	// popular inputs, as real traffic does.
	simInputs = 5000
	simZipf   = 1.1
	// simShadow is canary.shadow_fraction: the share of stable-served
	// requests the candidate also scores; candidate-served requests are
	// all scored by stable (canary.compare_split).
	simShadow = 0.1
	// simStableErrors is both versions' base error rate.
	simStableErrors = 0.001
	// simMedian and simSigma give request latency: lognormal, median 5 ms,
	// p99 about 9 ms.
	simMedian = 5 * time.Millisecond
	simSigma  = 0.25
	// simMaxIntervals bounds a run: a canary not decided after this many
	// intervals is counted as undecided.
	simMaxIntervals = 20
)

// canaryScenario is a candidate's behaviour against stable.
type canaryScenario struct {
	Name string
	// Disagree is the share of distinct inputs on which the candidate
	// answers differently; ExtraErrors its error rate above stable's;
	// Latency its latency as a multiple of stable's.
	Disagree, ExtraErrors, Latency float64
	// Good: the candidate is within every threshold of the default plan
	// (it should be promoted); Bad: clearly beyond one (rolled back).
	Good, Bad bool
}

var canaryScenarios = []canaryScenario{
	{Name: "A/A (identical models)", Latency: 1, Good: true},
	{Name: "good retrain (1% of inputs differ, 10% slower)", Disagree: 0.01, Latency: 1.1, Good: true},
	{Name: "2% disagreement", Disagree: 0.02, Latency: 1, Good: true},
	{Name: "4% disagreement (just inside the threshold)", Disagree: 0.04, Latency: 1, Good: true},
	{Name: "5% disagreement (the threshold)", Disagree: 0.05, Latency: 1},
	{Name: "10% disagreement", Disagree: 0.10, Latency: 1, Bad: true},
	{Name: "38% disagreement", Disagree: 0.38, Latency: 1, Bad: true},
	{Name: "0.5% more errors (half the threshold)", ExtraErrors: 0.005, Latency: 1, Good: true},
	{Name: "0.9% more errors (just inside the threshold)", ExtraErrors: 0.009, Latency: 1, Good: true},
	{Name: "3% more errors", ExtraErrors: 0.03, Latency: 1, Bad: true},
	{Name: "1.3x latency (inside the threshold)", Latency: 1.3, Good: true},
	{Name: "1.5x latency (the threshold)", Latency: 1.5},
	{Name: "1.75x latency", Latency: 1.75, Bad: true},
	{Name: "2x latency", Latency: 2, Bad: true},
}

// canaryOutcome is one simulated canary.
type canaryOutcome struct {
	phase release.Phase
	// step is where it ended (0-based); samples the candidate requests it
	// took; took the simulated time.
	step    int
	samples int64
	took    time.Duration
}

// simulate runs one canary of sc under the default plan through the real
// Recorder and release.Decide, tick by tick.
func simulate(sc canaryScenario, plan release.Plan, seed uint64, run int) canaryOutcome {
	rng := rand.New(rand.NewPCG(seed, uint64(run)))
	zipf := rand.NewZipf(rng, simZipf, 1, simInputs-1)
	// Which inputs the candidate disagrees on: a random share per run.
	disagrees := make([]bool, simInputs)
	for i := range disagrees {
		disagrees[i] = rng.Float64() < sc.Disagree
	}
	rec := canary.NewRecorder(prometheus.NewRegistry())
	latency := func(factor float64) time.Duration {
		return time.Duration(float64(simMedian) * factor * math.Exp(simSigma*rng.NormFloat64()))
	}
	outcome := func(errRate float64) string {
		if rng.Float64() < errRate {
			return canary.OutcomeError
		}
		return canary.OutcomeOK
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := release.Progress{Phase: release.Progressing, Candidate: "2", Weight: plan.Steps[0], StepStart: t0}
	period := plan.Interval / 4
	var samples int64
	now := t0
	for now.Sub(t0) < simMaxIntervals*plan.Interval {
		epoch := fmt.Sprintf("2/%d/%d", st.Step, st.StepStart.UnixNano())
		rec.Begin("m", epoch)
		for range int(simRate * period.Seconds()) {
			input := zipf.Uint64()
			if rng.Float64()*100 < st.Weight {
				samples++
				rec.Observe("m", "2", canary.RoleCandidate, outcome(simStableErrors+sc.ExtraErrors), latency(sc.Latency), true)
				rec.Compare("m", "2", input, disagrees[input])
				continue
			}
			rec.Observe("m", "1", canary.RoleStable, outcome(simStableErrors), latency(1), true)
			if rng.Float64() < simShadow {
				rec.Observe("m", "2", canary.RoleShadow, outcome(simStableErrors+sc.ExtraErrors), 0, false)
				rec.Compare("m", "2", input, disagrees[input])
			}
		}
		now = now.Add(period)
		d := release.Decide(plan, st, rec.Observations("m", epoch), now)
		st = d.Next
		if st.Phase.IsTerminal() {
			break
		}
	}
	return canaryOutcome{phase: st.Phase, step: st.Step, samples: samples, took: now.Sub(t0)}
}

// canaryResult tallies a scenario's runs.
type canaryResult struct {
	sc                                    canaryScenario
	runs, promoted, rolledBack, firstStep int
	samples                               []int64
	took                                  []time.Duration
}

// canaryEval simulates runs canaries of every scenario and renders the
// section and its targets.
func canaryEval(scenarios []canaryScenario, runs int, seed uint64) (string, []row, error) {
	plan := release.DefaultPlan()
	results := make([]canaryResult, len(scenarios))
	type job struct{ sc, run int }
	jobs := make(chan job)
	outs := make([][]canaryOutcome, len(scenarios))
	for i := range outs {
		outs[i] = make([]canaryOutcome, runs)
	}
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				outs[j.sc][j.run] = simulate(scenarios[j.sc], plan, seed+uint64(j.sc)<<32, j.run)
			}
		}()
	}
	for i := range scenarios {
		for r := range runs {
			jobs <- job{i, r}
		}
	}
	close(jobs)
	wg.Wait()
	for i, sc := range scenarios {
		res := canaryResult{sc: sc, runs: runs}
		for _, o := range outs[i] {
			switch o.phase {
			case release.Promoted:
				res.promoted++
			case release.RolledBack:
				res.rolledBack++
				if o.step == 0 {
					res.firstStep++
				}
			}
			if o.phase.IsTerminal() {
				res.samples = append(res.samples, o.samples)
				res.took = append(res.took, o.took)
			}
		}
		results[i] = res
	}
	return canarySection(plan, runs, seed, results), canaryTargets(results), nil
}

func canarySection(plan release.Plan, runs int, seed uint64, results []canaryResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, `## Canary releases

Each scenario is %d simulated canaries (run i draws from a PCG seeded with
(%d + scenario<<32, i)) under the default plan: steps %v %%, %s each, at
least %d candidate requests a step, rollback after %d failed checks, alpha
%g (false rollbacks over the whole canary), beta %g (a check passing a step
it should not), thresholds: error-rate increase %g, p99 latency %gx stable's
(tested as the share of candidate requests slower than that, at most 1%%),
disagreement %g of distinct inputs, no NaN. Requests arrive at %d/s and are
split by the step's weight; %g of stable-served requests are also scored by
the candidate and every candidate-served one by stable; inputs are drawn from
%d distinct ones by a Zipf law (s = %g), so most traffic repeats a few. Both
versions fail %g of requests; latency is lognormal (median %s). The real
canary.Recorder counts the requests and release.Decide ticks every quarter
interval. A canary still undecided after %d intervals counts as neither.

| scenario | promoted | rolled back | in the first step | undecided | median candidate requests to the verdict | median time to the verdict |
| --- | --- | --- | --- | --- | --- | --- |
`, runs, seed, plan.Steps, plan.Interval, plan.MinSamples, plan.FailureLimit, release.DefaultAlpha, release.DefaultBeta,
		plan.MaxErrorRateIncrease, plan.MaxP99LatencyRatio, plan.MaxDisagreement, simRate, simShadow, simInputs, simZipf,
		simStableErrors, simMedian, simMaxIntervals)
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.sc.Name,
			pctOf(r.promoted, r.runs), pctOf(r.rolledBack, r.runs), pctOf(r.firstStep, r.runs),
			pctOf(r.runs-r.promoted-r.rolledBack, r.runs), medianSamples(r.samples), medianTook(r.took))
	}
	return b.String()
}

// canaryTargets: no good candidate rolled back beyond alpha (A/A at most
// 1 %), every good retrain promoted, 38 % disagreement rolled back in the
// first step, 10 % within the plan, and clearly bad candidates rolled back.
func canaryTargets(results []canaryResult) []row {
	var rows []row
	for _, r := range results {
		switch {
		case r.sc.Name == "A/A (identical models)":
			rows = append(rows, row{Scenario: "canary A/A: rolled back", Target: "≤ 1%",
				Measured: rateOf(r.rolledBack, r.runs), Meets: float64(r.rolledBack) <= 0.01*float64(r.runs)})
		case strings.HasPrefix(r.sc.Name, "good retrain"):
			rows = append(rows, row{Scenario: "canary " + r.sc.Name + ": promoted", Target: "100%",
				Measured: rateOf(r.promoted, r.runs), Meets: r.promoted == r.runs})
		case strings.HasPrefix(r.sc.Name, "38%"):
			rows = append(rows, row{Scenario: "canary 38% disagreement: rolled back in the first step", Target: "100%",
				Measured: rateOf(r.firstStep, r.runs), Meets: r.firstStep == r.runs})
		case strings.HasPrefix(r.sc.Name, "10%"):
			rows = append(rows, row{Scenario: "canary 10% disagreement: rolled back within the plan", Target: "100%",
				Measured: rateOf(r.rolledBack, r.runs), Meets: r.rolledBack == r.runs})
		case r.sc.Good:
			rows = append(rows, row{Scenario: "canary " + r.sc.Name + ": rolled back", Target: "≤ 1%",
				Measured: rateOf(r.rolledBack, r.runs), Meets: float64(r.rolledBack) <= 0.01*float64(r.runs)})
		case r.sc.Bad:
			rows = append(rows, row{Scenario: "canary " + r.sc.Name + ": rolled back", Target: "100%",
				Measured: rateOf(r.rolledBack, r.runs), Meets: r.rolledBack == r.runs})
		}
	}
	return rows
}

func pctOf(n, of int) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(max(of, 1))) }

// rateOf is n of runs as a percentage with its 95% Wilson interval.
func rateOf(n, runs int) string { return withInterval(tally{Alarms: n, Runs: runs}) }

func medianSamples(s []int64) string {
	if len(s) == 0 {
		return "–"
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return fmt.Sprint(s[len(s)/2])
}

func medianTook(t []time.Duration) string {
	if len(t) == 0 {
		return "–"
	}
	t = slices.Clone(t)
	slices.Sort(t)
	return t[len(t)/2].String()
}
