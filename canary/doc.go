// Package canary is what a canary release needs around the release logic
// (package release): the router's split (Bucket, ToCandidate: sticky by
// key, a key's point never moves as the weight grows), Disagree, which
// compares two versions' answers to one request as the output's kind
// (package semantics) reads them, and the analysis sources that fill
// release.Observations: the in-process Recorder (with the
// modelgate_canary_* request metrics) and Prometheus (PromQL over those
// metrics, summed over replicas).
package canary
