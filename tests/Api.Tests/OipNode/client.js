// A second gRPC client stack for OipTests: @grpc/grpc-js with @grpc/proto-loader, which reads the service's .proto at
// run time (no generated code). Usage: node client.js <proto> <host:port> <model> <image file>...
// Prints one JSON object: server and model metadata, readiness, the probabilities of every image (one ModelInfer with
// a BYTES input in bytes_contents), the same with raw_input_contents, and the status of a call for an unknown model.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [proto, address, model, ...files] = process.argv.slice(2);
const definition = protoLoader.loadSync(proto, { keepCase: true, longs: Number, defaults: true });
const inference = grpc.loadPackageDefinition(definition).inference;
const client = new inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
const call = (method, request) => new Promise((resolve, reject) =>
  client[method](request, { deadline: Date.now() + 30000 }, (error, response) => (error ? reject(error) : resolve(response))));

function lengthPrefixed(buffers) {
  return Buffer.concat(buffers.flatMap((b) => { const n = Buffer.alloc(4); n.writeUInt32LE(b.length); return [n, b]; }));
}

(async () => {
  const images = files.map((f) => fs.readFileSync(f));
  const server = await call('ServerMetadata', {});
  const live = await call('ServerLive', {});
  const ready = await call('ModelReady', { name: model, version: '' });
  const metadata = await call('ModelMetadata', { name: model, version: '' });
  const typed = await call('ModelInfer', {
    model_name: model, id: 'node-typed',
    inputs: [{ name: 'image_bytes', datatype: 'BYTES', shape: [images.length], contents: { bytes_contents: images } }],
    outputs: [{ name: 'probabilities' }],
  });
  const raw = await call('ModelInfer', {
    model_name: model, model_version: '1',
    inputs: [{ name: 'image_bytes', datatype: 'BYTES', shape: [images.length] }],
    outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: 3 } } }],
    raw_input_contents: [lengthPrefixed(images)],
  });
  const rawTop = [];
  for (let b = raw.raw_output_contents[0], at = 0; at < b.length;) {
    const n = b.readUInt32LE(at); rawTop.push(b.subarray(at + 4, at + 4 + n).toString('utf8')); at += 4 + n;
  }
  let unknown = null;
  try { await call('ModelInfer', { model_name: 'no-such-model', inputs: [] }); } catch (e) { unknown = grpc.status[e.code]; }
  console.log(JSON.stringify({
    server: { name: server.name, extensions: server.extensions }, live: live.live, ready: ready.ready,
    metadata: { name: metadata.name, versions: metadata.versions, inputs: metadata.inputs.map((t) => t.name) },
    id: typed.id, shape: typed.outputs[0].shape, probabilities: typed.outputs[0].contents.fp32_contents,
    top3: rawTop, unknown,
  }));
  client.close();
})().catch((e) => { console.error(e); process.exit(1); });
