// The classifier thread: loads nsfwjs's bundled MobileNetV2 on TensorFlow.js's WebAssembly
// backend once, then answers one message per image. Nothing is fetched: the weights are modules
// inside the nsfwjs package and the .wasm files are read from @tensorflow/tfjs-backend-wasm.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

import sharp from 'sharp';

import { serveRpc } from '../../runtime/worker-rpc-serve.ts';
import { INPUT_SIZE, type NsfwWorkerMethods } from './protocol.ts';
import { NSFW_CLASSES, type NsfwProbabilities } from './severity.ts';

async function loadModel() {
  const tf = await import('@tensorflow/tfjs');
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  const wasmFile = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
  setWasmPaths(`${dirname(wasmFile)}/`);
  // nsfwjs and tfjs greet on the console while loading; the server's log is pino's alone.
  const { info, warn, log } = console;
  console.info = console.warn = console.log = () => {};
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('the TensorFlow.js wasm backend did not start');
    await tf.ready();
    const nsfwjs = await import('nsfwjs');
    return { tf, model: await nsfwjs.load('MobileNetV2') };
  } finally {
    Object.assign(console, { info, warn, log });
  }
}

let loaded: Awaited<ReturnType<typeof loadModel>>;

serveRpc<NsfwWorkerMethods>({
  async load() {
    loaded = await loadModel();
    return null;
  },
  classify,
});

async function classify(message: NsfwWorkerMethods['classify']['input']): Promise<NsfwProbabilities> {
  const { tf, model } = loaded;
  // The whole image squeezed to the model's square, RGB (alpha dropped), as the model was trained.
  const pixels = await sharp(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength), {
    raw: { width: message.width, height: message.height, channels: message.channels },
  })
    .removeAlpha()
    .resize(INPUT_SIZE, INPUT_SIZE, { fit: 'fill' })
    .raw()
    .toBuffer();
  const input = tf.tensor3d(new Int32Array(pixels), [INPUT_SIZE, INPUT_SIZE, 3], 'int32');
  try {
    const predictions = await model.classify(input, NSFW_CLASSES.length);
    const probabilities = Object.fromEntries(NSFW_CLASSES.map((c) => [c, 0])) as NsfwProbabilities;
    for (const p of predictions) probabilities[p.className as keyof NsfwProbabilities] = p.probability;
    return probabilities;
  } finally {
    input.dispose();
  }
}
