// Translation: source text -> target text over graphs `encoder` and `decoder_step`.
//
// Manifest fields read: translation.{source_tokenizer, target_tokenizer, max_source_length,
// max_target_length, long_input, beam_width, length_penalty, start_id, end_id, pad_id},
// heldout_sample, graphs.encoder.{inputs,outputs,files.onnx},
// graphs.decoder_step.{inputs,outputs,files.onnx}.

import { readFileSync } from "node:fs";

import { ArtifactError, padRows, stableOrder } from "../export_dir.js";
import { beamSearch, greedySearch, logSoftmax } from "../search.js";

const SPECIAL_SKIP = (padId, startId) => new Set([padId, startId]);

export async function createTranslation(exp, options = {}) {
  const t = (name) => exp.field(`translation.${name}`);
  const source = exp.tokenizer(t("source_tokenizer"));
  const target = exp.tokenizer(t("target_tokenizer"));
  const maxSource = t("max_source_length");
  const maxTarget = t("max_target_length");
  const longInput = t("long_input");
  const startId = t("start_id");
  const endId = t("end_id");
  const padId = t("pad_id");
  const quantization = options.quantization || "none";
  const batchSize = options.batchSize || 64;

  const encoderSpec = exp.graphSpec("encoder");
  const stepSpec = exp.graphSpec("decoder_step");
  const sourceInput = encoderSpec.inputs[0].name;
  const [encoderOutputsName, ...encoderStateNames] = encoderSpec.outputs.map((o) => o.name);
  const stepInputs = stepSpec.inputs.map((i) => i.name);
  // decoder_step inputs: token, the states (in encoder output order), encoder_outputs, mask.
  const [tokenInput] = stepInputs;
  const stateInputs = stepInputs.slice(1, -2);
  const [outputsInput, maskInput] = stepInputs.slice(-2);
  const stepOutputs = stepSpec.outputs.map((o) => o.name);
  const logitsName = stepOutputs[0];
  const newStateNames = stepOutputs.slice(1, -1);
  if (stateInputs.length !== encoderStateNames.length || newStateNames.length !== stateInputs.length) {
    throw new ArtifactError("encoder states and decoder_step states do not match in number");
  }

  function encodeSource(text) {
    let ids = source.encode(text);
    if (!ids.length) ids = [source.unkId]; // empty input: translate one <unk>
    const truncated = ids.length > maxSource;
    if (truncated) {
      if (longInput === "error") throw new Error(`sentence has ${ids.length} source tokens, more than max_source_length=${maxSource}`);
      ids = ids.slice(0, maxSource);
    }
    return { ids, truncated };
  }

  function decode(ids) {
    const skip = SPECIAL_SKIP(padId, startId);
    const kept = [];
    for (const id of ids) {
      if (id === endId) break;
      if (!skip.has(id)) kept.push(id);
    }
    return target.decodeIds(kept);
  }

  // Repeat every row of a flat (B, ...) tensor `times` times along axis 0.
  function repeatRows(tensor, times) {
    const [b, ...rest] = tensor.dims;
    const size = rest.reduce((x, y) => x * y, 1);
    const data = new tensor.data.constructor(b * times * size);
    for (let i = 0; i < b; i += 1) {
      const row = tensor.data.subarray(i * size, (i + 1) * size);
      for (let k = 0; k < times; k += 1) data.set(row, (i * times + k) * size);
    }
    return { data, dims: [b * times, ...rest] };
  }

  function gatherRows(tensor, parents) {
    const [, ...rest] = tensor.dims;
    const size = rest.reduce((x, y) => x * y, 1);
    const data = new tensor.data.constructor(parents.length * size);
    parents.forEach((p, i) => data.set(tensor.data.subarray(p * size, (p + 1) * size), i * size));
    return { data, dims: [parents.length, ...rest] };
  }

  async function translateBatch(rows, method, beamWidth, alpha) {
    const batch = padRows(rows, padId);
    const mask = { data: Uint8Array.from(batch.data, (id) => (id !== padId ? 1 : 0)), dims: batch.dims };
    const enc = await exp.run("encoder", { [sourceInput]: batch }, quantization, options.threads);
    const times = method === "beam" ? beamWidth : 1;
    const encoderOutputs = times > 1 ? repeatRows(enc[encoderOutputsName], times) : enc[encoderOutputsName];
    const stepMask = times > 1 ? repeatRows(mask, times) : mask;
    const states = encoderStateNames.map((name) => (times > 1 ? repeatRows(enc[name], times) : enc[name]));
    const step = async (tokens, current) => {
      const feeds = {
        [tokenInput]: { data: Int32Array.from(tokens), dims: [tokens.length, 1] },
        [outputsInput]: encoderOutputs,
        [maskInput]: stepMask,
      };
      stateInputs.forEach((name, i) => { feeds[name] = current[i]; });
      const out = await exp.run("decoder_step", feeds, quantization, options.threads);
      const logits = out[logitsName];
      const vocab = logits.dims[1];
      const logProbs = [];
      for (let r = 0; r < tokens.length; r += 1) {
        logProbs.push(logSoftmax(logits.data.subarray(r * vocab, (r + 1) * vocab)));
      }
      return { logProbs, states: newStateNames.map((name) => out[name]) };
    };
    const maxSteps = maxTarget - 1; // max_target_length counts <s>
    if (method === "greedy") {
      const outs = await greedySearch(step, states, rows.length, startId, endId, maxSteps);
      return outs.map((ids) => ({ ids, translation: decode(ids) }));
    }
    const reorder = (current, parents) => current.map((s) => gatherRows(s, parents));
    const hyps = await beamSearch(step, states, reorder, rows.length, startId, endId, maxSteps,
      beamWidth, alpha, 1);
    return hyps.map(([best]) => ({ ids: best.ids, translation: decode(best.ids), score: best.score }));
  }

  async function predict(texts, method = "beam") {
    const beamWidth = t("beam_width");
    const alpha = t("length_penalty");
    const encoded = texts.map(encodeSource);
    const order = stableOrder(encoded.map((e) => e.ids.length));
    const size = method === "greedy" ? batchSize : Math.max(1, Math.floor(batchSize / beamWidth));
    const results = new Array(texts.length);
    for (let start = 0; start < order.length; start += size) {
      const chunk = order.slice(start, start + size);
      const outs = await translateBatch(chunk.map((i) => encoded[i].ids), method, beamWidth, alpha);
      chunk.forEach((index, k) => {
        results[index] = { ...outs[k], truncated: encoded[index].truncated };
      });
    }
    return results;
  }

  function heldoutSample() {
    const file = exp.file(exp.field("heldout_sample"));
    return readFileSync(file, "utf8").split("\n").filter((l) => l.length)
      .map((l) => l.split("\t")[0]);
  }

  return { predict, encode: (text) => encodeSource(text).ids, heldoutSample };
}
