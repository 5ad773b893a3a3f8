package payloadlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// CloudEvents over HTTP (see the package documentation for the binding
// and for what KServe's logger sends).

const (
	specVersion = "1.0"
	contentJSON = "application/json"
	// contentStructured is the JSON event format's media type.
	contentStructured = "application/cloudevents+json; charset=UTF-8"
	// component is KServe's name for the part of an InferenceService that
	// runs the model.
	component = "predictor"
)

type httpSink struct {
	l         *Logger
	url       string
	mode      string
	source    string
	namespace string
	client    *http.Client
	own       bool // client is the sink's: close its idle connections at close
}

func newHTTPSink(l *Logger, o HTTPSink) (*httpSink, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payloadlog: sink URL %q: want http:// or https:// and a host", o.URL)
	}
	switch o.Mode {
	case "":
		o.Mode = ModeBinary
	case ModeBinary, ModeStructured:
	default:
		return nil, fmt.Errorf("payloadlog: sink mode %q: want %s or %s", o.Mode, ModeBinary, ModeStructured)
	}
	if o.Source == "" {
		o.Source = "/modelgate/" + l.opts.Replica
	}
	s := &httpSink{l: l, url: o.URL, mode: o.Mode, source: o.Source, namespace: o.Namespace, client: o.Client}
	if s.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = l.opts.Workers
		s.client, s.own = &http.Client{Transport: t}, true
	}
	return s, nil
}

func (s *httpSink) encode(e *Event) ([]byte, []byte) { return requestData(e), responseData(e) }

// write sends the request event, then the response event, each with its
// own retries; a request whose either event failed counts as one drop.
func (s *httpSink) write(ctx context.Context, e *Event, req, resp []byte) {
	for _, ev := range []struct {
		typ  string
		data []byte
	}{{TypeRequest, req}, {TypeResponse, resp}} {
		if err := s.l.deliver(ctx, func(ctx context.Context) error { return s.post(ctx, e, ev.typ, ev.data) }); err != nil {
			s.l.failed(e.Model, 1, err, "CloudEvent", "type", ev.typ, "id", e.ID, "url", s.url)
			return
		}
	}
	s.l.sent(e.Model, 1)
}

func (s *httpSink) tick(context.Context, time.Time) {}

func (s *httpSink) close(context.Context) {
	if s.own {
		s.client.CloseIdleConnections()
	}
}

// errStatus is a sink's answer other than 2xx.
type errStatus struct {
	code int
	body string
}

func (e errStatus) Error() string {
	if e.body == "" {
		return fmt.Sprintf("the sink answered %d", e.code)
	}
	return fmt.Sprintf("the sink answered %d: %s", e.code, e.body)
}

// post sends one CloudEvent and reads the answer. A 2xx is success; 408,
// 429 and 5xx are worth another attempt, other statuses are not.
func (s *httpSink) post(ctx context.Context, e *Event, typ string, data []byte) error {
	var body []byte
	h := http.Header{}
	if s.mode == ModeStructured {
		body = s.structured(e, typ, data)
		h.Set("Content-Type", contentStructured)
	} else {
		body = data
		h.Set("Content-Type", contentJSON)
		for _, a := range s.attributes(e, typ) {
			h.Set("ce-"+a.name, headerValue(a.value))
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return errPermanent{err}
	}
	req.Header = h
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection be reused
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	err = errStatus{code: res.StatusCode, body: string(bytes.TrimSpace(msg))}
	if res.StatusCode == http.StatusRequestTimeout || res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		return err
	}
	return errPermanent{err}
}

// attribute is a CloudEvents context attribute other than data and
// datacontenttype.
type attribute struct{ name, value string }

// attributes are an event's context attributes, in the order they are
// written.
func (s *httpSink) attributes(e *Event, typ string) []attribute {
	a := []attribute{
		{"specversion", specVersion},
		{"id", e.ID},
		{"source", s.source},
		{"type", typ},
		{"time", e.Time.UTC().Format(time.RFC3339Nano)},
		{"inferenceservicename", e.Model},
		{"component", component},
	}
	if s.namespace != "" {
		a = append(a, attribute{"namespace", s.namespace})
	}
	return append(a, attribute{"modelversion", e.Version}, attribute{"protocol", e.Protocol})
}

// structured is the event in the JSON event format: the attributes, then
// datacontenttype and the JSON data as a JSON value.
func (s *httpSink) structured(e *Event, typ string, data []byte) []byte {
	b := make([]byte, 0, len(data)+512)
	b = append(b, '{')
	for i, a := range s.attributes(e, typ) {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, a.name)
		b = append(b, ':')
		b = wire.AppendJSONString(b, a.value)
	}
	b = append(b, `,"datacontenttype":"`+contentJSON+`","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// headerValue percent-encodes an attribute value for a header, as the HTTP
// binding's section 3.1.3.2 requires: space, double quote, percent and
// every byte outside printable ASCII (U+0021 to U+007E), upper-case hex.
func headerValue(v string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			n++
		}
	}
	if n == 0 {
		return v
	}
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}
