// An rnnkit export directory: manifest.json, assets/ and the ONNX graphs it names.
// Only manifest fields are read here; every field a client reads is listed in README.md.

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";

import { Tokenizer } from "./tokenizer.js";

export class ArtifactError extends Error {}

const SUPPORTED_FORMAT_VERSION = 1;

/** Value at a dotted manifest path, or an ArtifactError naming the missing field. */
export function field(manifest, dotted) {
  let node = manifest;
  for (const part of dotted.split(".")) {
    if (node === null || typeof node !== "object" || !(part in node)) {
      throw new ArtifactError(`manifest.json has no \`${dotted}\`: the export was written by another rnnkit version`);
    }
    node = node[part];
  }
  return node;
}

const ORT_TYPES = { int32: "int32", int64: "int64", float32: "float32", bool: "bool" };
const ARRAYS = { int32: Int32Array, int64: BigInt64Array, float32: Float32Array, bool: Uint8Array };

export class ExportDir {
  constructor(dir) {
    this.dir = dir;
    const file = path.join(dir, "manifest.json");
    if (!existsSync(file)) throw new ArtifactError(`${file} is missing: not an rnnkit export directory`);
    this.manifest = JSON.parse(readFileSync(file, "utf8"));
    const version = this.manifest.format_version;
    if (!Number.isInteger(version) || version > SUPPORTED_FORMAT_VERSION) {
      throw new ArtifactError(`${file} has format_version ${version}; this client reads up to ${SUPPORTED_FORMAT_VERSION}`);
    }
    this.sessions = new Map();
  }

  field(dotted) {
    return field(this.manifest, dotted);
  }

  file(relative) {
    const full = path.join(this.dir, relative);
    if (!existsSync(full)) throw new ArtifactError(`${full} (named by manifest.json) is missing`);
    return full;
  }

  tokenizer(relative) {
    return Tokenizer.load(this.file(relative));
  }

  graphSpec(graph) {
    return this.field(`graphs.${graph}`);
  }

  /** The ONNX variant loaded for `quantization`: "none" on an export that holds no float32
   * ONNX file for `graph` (a compact export) means its first quantized one, as in
   * rnnkit.runtime. */
  onnxQuantization(graph, quantization = "none") {
    const held = this.field(`graphs.${graph}.files.onnx`);
    if (quantization === "none" && !("none" in held)) {
      const first = ["int8", "float16"].find((q) => q in held);
      if (first) return first;
    }
    return quantization;
  }

  /** ONNX Runtime session of `graph` for `quantization` ("none", "int8" or "float16"). */
  async session(graph, quantization = "none", threads = 0) {
    quantization = this.onnxQuantization(graph, quantization);
    const key = `${graph}/${quantization}`;
    if (!this.sessions.has(key)) {
      const relative = this.field(`graphs.${graph}.files.onnx.${quantization}`);
      const options = { executionProviders: ["cpu"], logSeverityLevel: 3 };
      if (threads) {
        options.intraOpNumThreads = threads;
        options.interOpNumThreads = 1;
      }
      this.sessions.set(key, await ort.InferenceSession.create(this.file(relative), options));
    }
    return this.sessions.get(key);
  }

  /** Run `graph` on named inputs {name: {data: number[] | TypedArray, dims}}; the manifest
   * gives each input's dtype. Returns {name: ort.Tensor} for the manifest's outputs. */
  async run(graph, inputs, quantization = "none", threads = 0) {
    const spec = this.graphSpec(graph);
    const session = await this.session(graph, quantization, threads);
    const feeds = {};
    for (const input of spec.inputs) {
      const value = inputs[input.name];
      if (value === undefined) throw new Error(`graph ${graph} needs input ${input.name}`);
      const Type = ARRAYS[input.dtype];
      if (!Type) throw new ArtifactError(`unsupported input dtype ${input.dtype} of ${graph}.${input.name}`);
      let data = value.data;
      if (!(data instanceof Type)) {
        data = input.dtype === "int64" ? Type.from(data, (x) => BigInt(x)) : Type.from(data);
      }
      feeds[input.name] = new ort.Tensor(ORT_TYPES[input.dtype], data, value.dims);
    }
    const result = await session.run(feeds);
    const out = {};
    for (const output of spec.outputs) out[output.name] = result[output.name];
    return out;
  }
}

/** Right-pad id rows with `padId` into a flat Int32Array (B, width). */
export function padRows(rows, padId) {
  const width = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * width).fill(padId);
  rows.forEach((row, b) => data.set(row, b * width));
  return { data, dims: [rows.length, width], width };
}

/** Indices 0..n-1 sorted by key, ties kept in input order. */
export function stableOrder(keys) {
  return keys.map((k, i) => [k, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1]);
}
