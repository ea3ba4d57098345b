// Captioning: image -> caption over graphs `encoder` and `decoder_step` (beam search).
//
// Manifest fields read: tokenizer.{file, pad_id, start_id, end_id}, preprocessing.{image_size,
// channels, dtype, pixel_range}, decoding.{search, beam_width, max_length,
// length_penalty, start_id, end_id}, sample.folder, graphs.encoder / graphs.decoder_step
// {inputs, outputs, files.onnx}.
// PNG images of any size: grey is expanded to RGB, alpha is composited on white, then the
// image is stretched to image_size with Pillow's bilinear resize (src/image_ops.js): the
// manifest's preprocessing names only Python's loader, so these rules are written here.

import { readdirSync } from "node:fs";
import path from "node:path";

import { ArtifactError } from "../export_dir.js";
import { compositeOnBackground, resizeBilinear } from "../image_ops.js";
import { readPng } from "../png.js";
import { beamSearch, greedySearch, logSoftmax } from "../search.js";

const BATCH = 64;
const BACKGROUND = [255, 255, 255]; // load_image's default compositing background
// Word-tokenizer detokenization extras after the WordPiece decoder (Python rnnkit.text).
const OPEN_BRACKET_SPACE = /([([{])\s+/gu;
const SPACE_CLOSE_BRACKET = /\s+([)\]}:;%])/gu;

export async function createCaptioning(exp, options = {}) {
  const tokenizer = exp.tokenizer(exp.field("tokenizer.file"));
  const padId = exp.field("tokenizer.pad_id");
  const pre = exp.field("preprocessing");
  const size = pre.image_size;
  if (pre.channels !== "RGB" || pre.dtype !== "float32" || pre.pixel_range[0] !== 0 || pre.pixel_range[1] !== 255) {
    throw new ArtifactError(`unsupported preprocessing ${JSON.stringify(pre)}`);
  }
  const d = (name) => exp.field(`decoding.${name}`);
  const search = d("search");
  const beamWidth = search === "beam" ? d("beam_width") : 1;
  const maxSteps = d("max_length");
  const alpha = d("length_penalty");
  const startId = d("start_id");
  const endId = d("end_id");
  const quantization = options.quantization || "none";

  const encSpec = exp.graphSpec("encoder");
  const stepSpec = exp.graphSpec("decoder_step");
  const imageInput = encSpec.inputs[0].name;
  const [valuesName, ...stateNames] = encSpec.outputs.map((o) => o.name);
  const stepInputs = stepSpec.inputs.map((i) => i.name);
  const [tokenInput] = stepInputs;
  const stateInputs = stepInputs.slice(1, -2);
  const [valuesInput, maskInput] = stepInputs.slice(-2);
  const stepOutputs = stepSpec.outputs.map((o) => o.name);
  const newStateNames = stepOutputs.slice(1, -1);

  if (pre.resize_mode !== "stretch") throw new ArtifactError(`resize_mode ${pre.resize_mode} is not supported (only stretch)`);

  function pixels(file) {
    const img = readPng(file);
    const count = img.width * img.height;
    const grey = img.mode === "L" || img.mode === "LA";
    const alpha = img.mode === "LA" || img.mode === "RGBA";
    const expanded = new Uint8Array(count * (alpha ? 4 : 3));
    const step = alpha ? 4 : 3;
    for (let p = 0; p < count; p += 1) {
      for (let c = 0; c < 3; c += 1) expanded[p * step + c] = img.data[p * img.channels + (grey ? 0 : c)];
      if (alpha) expanded[p * 4 + 3] = img.data[p * img.channels + img.channels - 1];
    }
    let rgb = alpha ? compositeOnBackground(expanded, count, BACKGROUND) : expanded;
    if (img.width !== size || img.height !== size) rgb = resizeBilinear(rgb, img.width, img.height, size, size);
    return Float32Array.from(rgb);
  }

  function decode(ids) {
    const kept = [];
    for (const id of ids) {
      if (id === endId) break;
      if (id !== padId && id !== startId) kept.push(id);
    }
    return tokenizer.decodeIds(kept).replace(OPEN_BRACKET_SPACE, "$1").replace(SPACE_CLOSE_BRACKET, "$1");
  }

  const repeatRows = (t, times) => {
    const [b, ...rest] = t.dims;
    const n = rest.reduce((x, y) => x * y, 1);
    const data = new t.data.constructor(b * times * n);
    for (let i = 0; i < b; i += 1) for (let k = 0; k < times; k += 1) data.set(t.data.subarray(i * n, (i + 1) * n), (i * times + k) * n);
    return { data, dims: [b * times, ...rest] };
  };
  const gatherRows = (t, parents) => {
    const [, ...rest] = t.dims;
    const n = rest.reduce((x, y) => x * y, 1);
    const data = new t.data.constructor(parents.length * n);
    parents.forEach((p, i) => data.set(t.data.subarray(p * n, (p + 1) * n), i * n));
    return { data, dims: [parents.length, ...rest] };
  };

  async function predict(files) {
    const results = [];
    for (let start = 0; start < files.length; start += BATCH) {
      const chunk = files.slice(start, start + BATCH);
      const data = new Float32Array(chunk.length * size * size * 3);
      chunk.forEach((f, i) => data.set(pixels(f), i * size * size * 3));
      const enc = await exp.run("encoder", { [imageInput]: { data, dims: [chunk.length, size, size, 3] } },
        quantization, options.threads);
      const values = beamWidth > 1 ? repeatRows(enc[valuesName], beamWidth) : enc[valuesName];
      const [rows, steps] = values.dims;
      const mask = { data: new Uint8Array(rows * steps).fill(1), dims: [rows, steps] };
      const states = stateNames.map((n) => enc[n]);
      const step = async (tokens, current) => {
        const feeds = { [tokenInput]: { data: Int32Array.from(tokens), dims: [tokens.length, 1] },
          [valuesInput]: values, [maskInput]: mask };
        stateInputs.forEach((n, i) => { feeds[n] = current[i]; });
        const out = await exp.run("decoder_step", feeds, quantization, options.threads);
        const logits = out[stepOutputs[0]];
        const v = logits.dims[1];
        const logProbs = [];
        for (let r = 0; r < tokens.length; r += 1) logProbs.push(logSoftmax(logits.data.subarray(r * v, (r + 1) * v)));
        return { logProbs, states: newStateNames.map((n) => out[n]) };
      };
      if (beamWidth > 1) {
        const tiled = states.map((s) => repeatRows(s, beamWidth));
        const hyps = await beamSearch(step, tiled, (cur, parents) => cur.map((s) => gatherRows(s, parents)),
          chunk.length, startId, endId, maxSteps, beamWidth, alpha, 1);
        hyps.forEach(([best]) => results.push({ ids: best.ids, caption: decode(best.ids), score: best.score }));
      } else {
        const outs = await greedySearch(step, states, chunk.length, startId, endId, maxSteps);
        outs.forEach((ids) => results.push({ ids, caption: decode(ids) }));
      }
    }
    return results;
  }

  function heldoutSample() {
    const folder = exp.file(exp.field("sample.folder"));
    return readdirSync(folder).filter((n) => n.endsWith(".png")).sort().map((n) => path.join(folder, n));
  }

  const pixelsOf = (files) => files.map((f) => Array.from(pixels(f)));
  return { predict, heldoutSample, pixelsOf, describe: (f) => path.basename(f), readImages: (list) => list };
}
