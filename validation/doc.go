// Package validation runs the gates a model version must pass before it may
// take traffic, and reports the outcome in machine and human forms.
//
// Run checks a candidate version, comparing it with a baseline (the current
// stable version) when there is one, on the execution providers of the
// serving.Runtime it is given. Each gate yields a GateResult; the verdict is
// "pass" only if every gate passed. Run returns an error only when no verdict
// can be given (invalid options, an unreadable holdout, a baseline that does
// not load, a cancelled context); everything wrong with the candidate is a
// failed gate whose message names the problem. ExitCode maps the outcome to
// 0 (passed), 1 (a gate failed) and 2 (error).
//
// # Gates
//
// sanity: the bytes match the manifest's sha256 and size when it records
// them ("sha256 of the bytes does not match the manifest"); the model loads
// on the runtime's providers (a truncated or unreadable file fails here with
// ONNX Runtime's reason); it runs on a dummy input of its declared shapes,
// with free dimensions as 1, and again with a batch of 8 when every input's
// first dimension is free; every floating-point output is finite (no NaN or
// Inf) and fits its declared shape; and two runs on the same input agree
// bit for bit. Dummy floating-point inputs hold fixed values in [0.25, 1),
// integer inputs zeros, booleans false.
//
// contract: the input and output names, datatypes and shapes ONNX Runtime
// reads from the model must equal the signature the manifest records
// (skipped, with a note, when the manifest records none), and must not break
// the baseline's. A removed, renamed, retyped or reshaped input or output
// fails, printed as `output "label" removed`, `output "label" renamed to
// "class"`, `input "features": shape [-1 30] -> [-1 31]` or `output
// "probabilities": datatype FP32 -> FP64`. An added input fails (clients do
// not send it). An added output is the one change allowed, and is noted in
// the message. The first output must stay first, since /predict answers with
// it. Shapes compare exactly (-1 is a free dimension). Contract runs whenever
// the candidate loaded, even if another sanity check failed.
//
// accuracy: the candidate runs over the holdout (256 rows per run, as its
// single input's datatype, FP32 or FP64; a model with several inputs fails
// with "the accuracy gate needs a single-input model"), and so does the
// baseline on the same rows. Classifiers are scored with accuracy,
// precision, recall and F1 per class (precision_<class>, recall_<class>,
// f1_<class>), macro F1 (f1_macro), ROC AUC for two classes (roc_auc) and
// log loss (log_loss, when the scores are probabilities); regressors with
// rmse, mae and r2. Thresholds: Options.MinAccuracy; Options.Metric with
// Options.MinMetric (a maximum for log_loss, rmse and mae, where lower is
// better); and Options.MaxRegression, the largest allowed worsening of the
// primary metric against the baseline (Metric when set, else accuracy for a
// classifier and r2 for a regressor). Without a holdout the gate fails ("no
// holdout given") unless Options.SkipAccuracy is set, which reports it as
// skipped without failing the verdict. An output that is NaN or Inf on a
// holdout row fails the gate.
//
// latency: p50 and p99 run times at batch 1 and at Options.LargeBatch (when
// the model takes free batch sizes), over Options.LatencyRuns timed runs
// after 10 untimed ones, on the sessions' provider. With a baseline, its
// runs are interleaved with the candidate's (A B, B A, ...) so that noise
// on the machine hits both. Options.LatencyBudget bounds the p99 at batch
// 1. Options.MaxLatencyRatio bounds the candidate's latency over the
// baseline's at each batch size. The p50 ratio decides and the p99 ratio is
// reported beside it (and noted when it alone is over the limit): on a busy
// machine the p99 of short runs is set by the scheduler preempting the
// process, whichever model is running, so interleaving does not make p99s
// comparable. Under load, models of equal cost showed p99 ratios of 40x,
// and a model 38x slower in the median a p99 ratio of 1.4x, while the
// medians were right both times. A measurement of a slow model stops early,
// after 2 seconds once 20 runs are done (its warm-up after half a second
// once 2 are done), which keeps the gate to a few seconds. With fewer than
// 100 runs, the p99 is the slowest run.
//
// Accuracy and latency run only when sanity passed; otherwise they are
// reported as not run ("sanity failed") and fail the verdict.
//
// # Output kinds
//
// A version pushed with output kinds (registry.Manifest.OutputKinds, see
// package semantics) is read by the kind of its first output (the one
// /predict answers with as "prediction"): a label is the predicted class,
// with class scores from the first other output stored as probabilities or
// probability; probabilities give the class by top-1 and are the scores; a
// probability makes a binary classifier whose class is 1 when the value is
// at or above the stored threshold (the holdout's labels must be 0 or 1);
// a regression, of one number per row, makes a regressor. The gate's
// message names the output and its stored kind, and the report lists the
// candidate's kinds. The baseline is read by its own stored kinds. A
// version stored without kinds (pushed before they were recorded), or
// whose first output has none, is read by the label rule below.
// InferKinds is how promote push infers the kinds it stores.
//
// # The label rule
//
// How predictions are read from the outputs of a version stored without
// kinds, by its first output (the one /predict answers with as
// "prediction"):
//
//  1. An integer output of shape [N] or [N, 1]: a classifier, and the output
//     is the predicted class. Class scores, for roc_auc and log_loss, come
//     from the first floating-point output named probabilities,
//     probability, probs, scores or output_probability (any case), else
//     from the first floating-point output with two or more values per
//     row; one value per row is the probability of class 1.
//  2. A floating-point output of shape [N, k] with k >= 2: a classifier;
//     the predicted class is the index of the largest value (argmax) and
//     the output holds the class scores.
//  3. A floating-point output of shape [N] or [N, 1]: a binary classifier
//     when every holdout label is 0 or 1 and every prediction lies in
//     [0, 1] (the output is the probability of class 1; the class is 1 when
//     it is >= 0.5); otherwise a regressor, whose output is the prediction.
//  4. Anything else cannot be evaluated, and the gate fails saying so.
//
// Scores are probabilities when every value lies in [0, 1] and each row
// sums to 1 (within 1e-3); otherwise log_loss is left out (AUC only needs an
// order). A classifier's holdout labels must be whole numbers; per-class
// metrics cover every class seen in the labels or the predictions. The
// baseline is read by the same rule; if it reads as the other kind, the
// regression check fails as not comparable.
//
// # The holdout
//
// A CSV of numbers, one row per example, the label in the last column unless
// Options.LabelColumn names another (a header name, else a 0-based index);
// the other columns are the features, in order. The first line is a header
// of names when any of its fields is neither empty nor a number. Spaces
// around fields and a UTF-8 byte order mark are ignored, empty lines
// skipped; an empty value, a value that is not a finite number, or a row of
// another width is an error (ErrHoldout) naming its line and column.
//
// # Defaults
//
// Options' zero values: MaxRegression 0 allows no worsening at all (negative
// turns the check off; DefaultMaxRegression, 0.01, is the suggested value);
// MaxLatencyRatio 0 turns the ratio off (DefaultMaxLatencyRatio, 2, is the
// suggested value); LatencyBudget, MinAccuracy and MinMetric 0 set no
// threshold; LatencyRuns 0 is 200; LargeBatch 0 is 32.
//
// # Reports
//
// Report.JSON is indented JSON with a fixed key order. Each gate is flat:
//
//	{"name": "accuracy", "passed": false, "message": "...", "accuracy": 0.91, ...,
//	 "thresholds": {"accuracy": ">= 0.95"}, "baseline": {"accuracy": 0.96, ...}}
//
// Before the gates, "output_kinds" lists the candidate's stored kinds in
// signature order ([{"output": "probability", "semantics": {"kind":
// "probability", "threshold": 0.5}}]; left out for a version without).
//
// Report.Markdown reads as a pull-request comment: a header with the
// verdict (✅ or ❌), a line of the output kinds, one table (gate, result,
// metric, candidate, baseline, threshold), the failures and the notes.
// Report.Text is the same for a terminal, in aligned columns.
package validation
