// The onnxruntime-node contender of make bench: node:http serving an ONNX
// model with ONNX Runtime's own Node.js binding, one worker process per
// core (node:cluster), each with one intra-op thread.
//
//   MODEL=model.onnx PORT=8080 node bench/node/server.js
//
// POST /predict {"features": [...]} or {"instances": [[...], ...]} answers
// {"prediction": [...], "probabilities": [[...], ...]}, as the Python
// contender does; GET /healthz is 200.
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');
const ort = require('onnxruntime-node');

const workers = Number(process.env.WORKERS || os.availableParallelism());

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  // A worker that dies takes the server down: fewer workers would skew
  // the figures without a word.
  cluster.on('exit', (w, code, signal) => {
    console.error(`worker ${w.process.pid} exited (${signal || code})`);
    process.exit(1);
  });
} else {
  serve().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

async function serve() {
  const session = await ort.InferenceSession.create(process.env.MODEL, {
    intraOpNumThreads: Number(process.env.THREADS || 1),
    interOpNumThreads: 1,
  });
  const [input] = session.inputNames;
  const [labelName, probName] = session.outputNames;
  http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      return reply(res, 200, { status: 'ok' });
    }
    if (req.method !== 'POST' || req.url !== '/predict') {
      return reply(res, 404, { error: 'not found' });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let rows;
      try {
        const body = JSON.parse(Buffer.concat(chunks));
        rows = body.features !== undefined ? [body.features] : body.instances;
        if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.length === rows[0].length)) {
          throw new Error('send "features" (one row) or "instances" (rows of equal length)');
        }
      } catch (err) {
        return reply(res, 400, { error: err.message });
      }
      const n = rows[0].length;
      const data = new Float32Array(rows.length * n);
      rows.forEach((r, i) => data.set(r, i * n));
      let tensor;
      try {
        tensor = new ort.Tensor('float32', data, [rows.length, n]);
      } catch (err) {
        return reply(res, 400, { error: err.message });
      }
      session.run({ [input]: tensor }).then((out) => {
        const probs = out[probName];
        const k = probs.dims[1];
        reply(res, 200, {
          prediction: Array.from(out[labelName].data, Number),
          probabilities: rows.map((_, i) => Array.from(probs.data.subarray(i * k, (i + 1) * k))),
        });
      }).catch((err) => reply(res, 500, { error: err.message }));
    });
  }).listen(Number(process.env.PORT), '127.0.0.1');
}

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
