// Package payloadlog records a sampled share of the requests an opted-in
// model answered, with the answers (inputs, outputs, model, version,
// request id, time, protocol), off the request path: as CloudEvents to an
// HTTP sink, the way KServe's inference logger sends them, or as JSON lines
// in objects under a prefix of the registry's storage, for `promote` and
// training jobs to read.
//
// The request path pays for a map lookup, a sampling decision and a
// channel send: Log never blocks and never encodes. A bounded queue sits
// between it and the workers; when it is full the event is dropped and
// counted (modelgate_payload_log_dropped_total{reason="queue_full"}), so a
// slow, hanging or absent sink costs drops, never latency. Workers encode
// each event, check its payloads against the size cap, and send them with a
// timeout per attempt and a bounded retry with backoff. Close stops taking
// events and flushes what is queued (and, for storage, what is buffered)
// within its context's deadline; what is left then is counted as dropped
// with reason "shutdown".
//
// # What KServe's logger sends, and what this package sends
//
// KServe's logger (github.com/kserve/kserve, pkg/logger/worker.go and
// handler.go, read at commit 0217bdabaaa250485b336805da1aed04960dc758)
// sends two CloudEvents per request, with the cloudevents sdk-go client in
// binary content mode (cloudevents.WithEncodingBinary):
//
//   - type "org.kubeflow.serving.inference.request" (CEInferenceRequest),
//     whose data is the request body, and, only when the answer's status is
//     200, "org.kubeflow.serving.inference.response" (CEInferenceResponse),
//     whose data is the response body;
//   - both with the same id: the request's Ce-Id header, else a new UUID
//     (getOrCreateID; its comment notes the request id "would ideally have
//     its own header", and rides on ce-id instead);
//   - extension attributes, lower-case alphanumeric as CloudEvents
//     requires: inferenceservicename, namespace, component, endpoint
//     ("default" or "canary"), metadata (selected request headers) and
//     annotations; specversion 1.0; the source is the model server's URL.
//
// The CloudEvents HTTP protocol binding (github.com/cloudevents/spec,
// cloudevents/bindings/http-protocol-binding.md, sections 3.1 and 3.2)
// defines the two content modes used here. Binary: the data is the body,
// its media type the Content-Type header (never a ce-datacontenttype
// header), and every other attribute, extensions included, a header named
// "ce-" and the attribute (ce-specversion: 1.0, ce-id, ce-source, ce-type,
// ce-time), its value percent-encoded (space, double quote, percent and
// anything outside printable ASCII, as UTF-8 bytes in upper-case hex).
// Structured: Content-Type application/cloudevents+json; charset=UTF-8, and
// the attributes and "data" in one JSON object (the JSON event format puts
// JSON data in "data" as a JSON value).
//
// This package sends the same two types with the same shared id (the
// request id: the OIP request's "id", else the X-Request-Id header or the
// x-request-id gRPC metadata, else a new UUID), specversion 1.0, ce-time,
// ce-source (HTTPSink.Source, else "/modelgate/<replica>"), and the
// extensions inferenceservicename (the model), component ("predictor"),
// namespace (when configured), modelversion and protocol (its own, for a
// gateway serves several versions of a model). It sets no endpoint: which
// role a version plays in a canary is the release state's to say, and the
// version is in modelversion. The data is JSON: for /predict the request
// body as received and the /predict answer; for the Open Inference Protocol
// (REST, JSON or binary, and gRPC) the request and the answer in the OIP's
// REST JSON form, tensors as name, shape, datatype and data, whatever form
// they travelled in.
package payloadlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// The CloudEvents types of KServe's inference logger.
const (
	TypeRequest  = "org.kubeflow.serving.inference.request"
	TypeResponse = "org.kubeflow.serving.inference.response"
)

// The protocols an Event names.
const (
	ProtocolPredict = "predict" // POST /predict
	ProtocolV2      = "v2"      // the OIP over HTTP, JSON or binary tensor data
	ProtocolGRPC    = "grpc"    // the OIP over gRPC (ModelInfer)
)

// The content modes of HTTPSink.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
)

// Event is one answered request. The Logger owns it, and the memory its
// slices refer to, once Log is called: the caller must not change them.
type Event struct {
	// Protocol is one of the Protocol constants.
	Protocol string
	// ID is the request id, shared by its request and response events.
	ID             string
	Model, Version string
	// Time is when the answer was ready.
	Time time.Time
	// Inputs are the tensors the model ran on; Outputs the answer's.
	Inputs, Outputs []wire.Tensor
	// Body is /predict's request body, the request event's data there;
	// nil for the OIP, whose request event carries Inputs.
	Body []byte
}

// HTTPSink sends each event as two CloudEvents, POSTed to URL.
type HTTPSink struct {
	URL string
	// Mode is ModeBinary (KServe's; the default) or ModeStructured.
	Mode string
	// Source is the events' source attribute; empty: "/modelgate/<replica>".
	Source string
	// Namespace, when set, is the namespace extension attribute.
	Namespace string
	// Client sends the events; nil: a client of the Logger's own. Each
	// attempt is bounded by Options.Timeout through its context.
	Client *http.Client
}

// StorageSink appends each event as a JSON line to objects in a bucket, at
// <Prefix>/<model>/<yyyy>/<mm>/<dd>/<hh>-<replica>-<run>-<seq>.jsonl (UTC;
// run tells one start of the gateway from the next), each written once,
// whole and only if absent, when it reaches FlushBytes, when it is
// FlushInterval old, when a record of another hour comes, or at Close.
type StorageSink struct {
	Bucket registry.Bucket
	// Prefix is a key prefix such as "payloads" (no leading or trailing
	// slash).
	Prefix string
	// FlushBytes: 0 means 8 MiB.
	FlushBytes int
	// FlushInterval: 0 means one minute.
	FlushInterval time.Duration
}

// Options configure a Logger.
type Options struct {
	// SampleRates are the models whose payloads are logged (the opt-in),
	// each with the share of its requests logged, in [0, 1].
	SampleRates map[string]float64
	// Exactly one sink.
	HTTP    *HTTPSink
	Storage *StorageSink
	// QueueSize bounds the events waiting for a worker; 0 means 1024.
	QueueSize int
	// Workers send events at once; 0 means 2.
	Workers int
	// MaxPayloadBytes caps each of an event's two payloads (the request's
	// and the response's data, or a line's inputs and outputs) once
	// encoded; an event over it is dropped (reason "too_large"). 0 means
	// 1 MiB.
	MaxPayloadBytes int
	// Timeout bounds one attempt to send (a POST, an upload); 0 means 5s.
	Timeout time.Duration
	// Retries after a failed attempt; a 4xx other than 408 and 429 is not
	// retried.
	Retries int
	// Backoff between attempts; zero means 100ms doubling to 5s, with 20%
	// jitter.
	Backoff backoff.Policy
	// Replica names this gateway in object keys and the default source;
	// empty: the host name.
	Replica string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock of object keys and flush ages; nil is time.Now.
	Now func() time.Time

	// checkEvery is how often buffered objects are checked for age; 0:
	// a quarter of the flush interval, between 100ms and 10s.
	checkEvery time.Duration
}

// Drop reasons, the reason label of modelgate_payload_log_dropped_total.
const (
	ReasonQueueFull = "queue_full" // the queue was full
	ReasonTooLarge  = "too_large"  // a payload was over MaxPayloadBytes
	ReasonSinkError = "sink_error" // the sink refused it, or every attempt failed
	ReasonShutdown  = "shutdown"   // logged after Close, or still unsent at its deadline
)

var reasons = [...]string{ReasonQueueFull, ReasonTooLarge, ReasonSinkError, ReasonShutdown}

const (
	iQueueFull = iota
	iTooLarge
	iSinkError
	iShutdown
)

// sink is where workers put encoded events.
type sink interface {
	// encode returns an event's two payloads, the ones the size cap
	// applies to.
	encode(e *Event) (request, response []byte)
	// write delivers or buffers an event, counting what it delivers and
	// what it drops (Logger.sent, Logger.drop).
	write(ctx context.Context, e *Event, request, response []byte)
	// tick flushes what is due at now (buffered objects).
	tick(ctx context.Context, now time.Time)
	// close flushes everything within ctx and releases the sink.
	close(ctx context.Context)
}

// Logger is safe for concurrent use.
type Logger struct {
	opts  Options
	rates map[string]float64
	// anyRate is the largest of rates.
	anyRate float64
	log     *slog.Logger
	now     func() time.Time
	sink    sink
	m       *metrics

	queue chan *Event
	// mu orders Log's sends before Close: Log holds it shared, Close
	// exclusively to set closed, so that no event is queued after Close
	// began without being counted.
	mu     sync.RWMutex
	closed bool
	// stop tells the workers to drain the queue and exit.
	stop chan struct{}
	// ctx ends at Close's deadline: in-flight sends are abandoned.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// lastWarn limits warnings about the sink to one a minute.
	lastWarn atomic.Int64
}

// Defaults of Options' zero values.
const (
	DefaultQueueSize       = 1024
	DefaultWorkers         = 2
	DefaultMaxPayloadBytes = 1 << 20
	DefaultTimeout         = 5 * time.Second
	DefaultFlushBytes      = 8 << 20
	DefaultFlushInterval   = time.Minute
)

// New starts a Logger's workers. Call Close to stop them.
func New(opts Options) (*Logger, error) { return newWith(opts, nil) }

// newWith is New with the sink that mk makes (tests' fakes); nil makes the
// one opts names.
func newWith(opts Options, mk func(*Logger) sink) (*Logger, error) {
	if (opts.HTTP == nil) == (opts.Storage == nil) {
		return nil, errors.New("payloadlog: want exactly one sink: HTTP or Storage")
	}
	for model, r := range opts.SampleRates {
		if !(r >= 0 && r <= 1) {
			return nil, fmt.Errorf("payloadlog: model %s: sample rate %g is not in [0, 1]", model, r)
		}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff == (backoff.Policy{}) {
		opts.Backoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	}
	if opts.Replica == "" {
		h, _ := os.Hostname()
		opts.Replica = h
	}
	opts.Replica = keySegment(opts.Replica)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Logger{
		opts:  opts,
		rates: make(map[string]float64, len(opts.SampleRates)),
		log:   opts.Logger.With("component", "payloadlog"),
		now:   opts.Now,
		queue: make(chan *Event, opts.QueueSize),
		stop:  make(chan struct{}),
	}
	models := make([]string, 0, len(opts.SampleRates))
	for model, r := range opts.SampleRates {
		l.rates[model] = r
		l.anyRate = max(l.anyRate, r)
		models = append(models, model)
	}
	var err error
	switch {
	case mk != nil:
		l.sink = mk(l)
	case opts.HTTP != nil:
		l.sink, err = newHTTPSink(l, *opts.HTTP)
	default:
		l.sink, err = newStorageSink(l, *opts.Storage)
	}
	if err != nil {
		return nil, err
	}
	if l.m, err = newMetrics(opts.Registerer, models, func() float64 { return float64(len(l.queue)) }); err != nil {
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		l.wg.Add(1)
		go l.work()
	}
	if s, ok := l.sink.(*storageSink); ok {
		l.wg.Add(1)
		go l.ticker(s.checkEvery)
	}
	return l, nil
}

// Enabled reports whether model opted in.
func (l *Logger) Enabled(model string) bool {
	_, ok := l.rates[model]
	return ok
}

// Sampled reports whether a request whose Draw is draw is to be logged:
// model opted in, and the draw falls in its sample. For model "" (not
// known yet: /predict's default model) it reports whether the draw falls
// in any opted-in model's sample, so that a request it refuses need not be
// followed further; ask again with the model once it is known.
func (l *Logger) Sampled(model string, draw float64) bool {
	if model == "" {
		return l.anyRate > 0 && inSample(draw, l.anyRate)
	}
	rate, ok := l.rates[model]
	return ok && inSample(draw, rate)
}

// Log hands an answered request over to be logged. It never blocks: when
// the queue is full the event is dropped and counted. Events of models
// that did not opt in are ignored; Log does not sample (Sampled does).
func (l *Logger) Log(e *Event) {
	drops, ok := l.m.dropped[e.Model]
	if !ok {
		return
	}
	// Each element takes at least two bytes of JSON (a digit and a comma,
	// or a quote pair for a string): an event whose tensors alone prove a
	// payload over the cap is dropped here, so the queue never holds it.
	if minJSON(e.Inputs) > l.opts.MaxPayloadBytes || minJSON(e.Outputs) > l.opts.MaxPayloadBytes {
		l.m.add(drops, iTooLarge, 1)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.m.add(drops, iShutdown, 1)
		return
	}
	select {
	case l.queue <- e:
	default:
		l.m.add(drops, iQueueFull, 1)
		l.warn("payload log queue is full: events are dropped (modelgate_payload_log_dropped_total{reason=\"queue_full\"}); the sink is slower than the traffic logged", "queue_size", l.opts.QueueSize)
	}
}

// minJSON is a lower bound of the bytes of ts' data as JSON arrays.
func minJSON(ts []wire.Tensor) int {
	n := 0
	for _, t := range ts {
		n += 2*t.Len() + 1
	}
	return n
}

// Close stops taking events, lets the workers send what is queued and the
// sink flush what it holds, within ctx; what is still unsent when ctx ends
// is dropped and counted (reason "shutdown"). It returns an error saying
// how many events were dropped so, nil when none were. Close is
// idempotent.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	before := l.m.shutdowns.Load()
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		l.cancel() // abandon in-flight sends; the workers count the rest
		<-done
	}
	l.sink.close(ctx)
	l.cancel()
	if n := l.m.shutdowns.Load() - before; n > 0 {
		return fmt.Errorf("payloadlog: %d events dropped at shutdown: the sink did not take them before the deadline", n)
	}
	return nil
}

// work sends queued events until Close, then drains the queue.
func (l *Logger) work() {
	defer l.wg.Done()
	for {
		select {
		case e := <-l.queue:
			l.handle(e)
		case <-l.stop:
			for {
				select {
				case e := <-l.queue:
					l.handle(e)
				default:
					return
				}
			}
		}
	}
}

// handle encodes one event, checks its size and writes it to the sink.
func (l *Logger) handle(e *Event) {
	if l.ctx.Err() != nil {
		l.drop(e.Model, iShutdown, 1)
		return
	}
	req, resp := l.sink.encode(e)
	if len(req) > l.opts.MaxPayloadBytes || len(resp) > l.opts.MaxPayloadBytes {
		l.drop(e.Model, iTooLarge, 1)
		return
	}
	l.sink.write(l.ctx, e, req, resp)
}

// ticker has the sink flush what is due, until Close.
func (l *Logger) ticker(every time.Duration) {
	defer l.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.sink.tick(l.ctx, l.now())
		case <-l.stop:
			return
		}
	}
}

// sent counts n events of model delivered.
func (l *Logger) sent(model string, n int) {
	if c, ok := l.m.sent[model]; ok {
		c.Add(float64(n))
	}
}

// drop counts n events of model dropped for reason (an i* index).
func (l *Logger) drop(model string, reason, n int) {
	if d, ok := l.m.dropped[model]; ok {
		l.m.add(d, reason, n)
	}
}

// failed counts n events dropped after sending failed with err: at
// shutdown when the Logger's context ended, else as sink errors.
func (l *Logger) failed(model string, n int, err error, what string, args ...any) {
	if l.ctx.Err() != nil {
		l.drop(model, iShutdown, n)
		return
	}
	l.drop(model, iSinkError, n)
	l.warn("payload log sink failed: "+what+" dropped", append(args, "model", model, "events", n, "err", err)...)
}

// warn logs at most once a minute.
func (l *Logger) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn(msg, args...)
}

// errPermanent marks an error that retrying cannot mend.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// deliver runs attempt with a timeout each, retrying with backoff up to
// Options.Retries times unless the error is permanent or ctx ended.
func (l *Logger) deliver(ctx context.Context, attempt func(ctx context.Context) error) error {
	for n := 0; ; n++ {
		actx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		start := time.Now()
		err := attempt(actx)
		cancel()
		l.m.sendSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			return nil
		}
		l.m.failures.Inc()
		var p errPermanent
		if errors.As(err, &p) || n >= l.opts.Retries || ctx.Err() != nil {
			return err
		}
		if werr := l.opts.Backoff.Wait(ctx, n+1); werr != nil {
			return err
		}
	}
}

// keySegment makes s one segment of an object key: lower case letters,
// digits, '.', '-' and '_', others as '-'.
func keySegment(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, s)
	if s == "" || strings.Trim(s, ".") == "" {
		return "gateway"
	}
	return s
}
