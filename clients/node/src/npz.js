// Read NumPy .npz archives (zip of .npy files, stored or deflated) without dependencies.

import { readFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";

const DTYPES = {
  "<i2": [Int16Array, 2], "<i4": [Int32Array, 4], "<i8": [BigInt64Array, 8],
  "<f4": [Float32Array, 4], "<f8": [Float64Array, 8], "|u1": [Uint8Array, 1], "|b1": [Uint8Array, 1],
};

/** Parse one .npy buffer: {dtype, shape, data} (data: TypedArray, or string[] for <U). */
export function parseNpy(buf, name = "array") {
  if (buf.readUInt32BE(0) !== 0x934e554d || buf.toString("latin1", 1, 6) !== "NUMPY") {
    throw new Error(`${name} is not a .npy array`);
  }
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString("latin1", start, start + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: bad .npy header ${header}`);
  if (fortran === "True") throw new Error(`${name}: Fortran-order arrays are not supported`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  const body = buf.subarray(offset);
  const unicode = /^<U(\d+)$/.exec(descr);
  if (unicode) {
    const width = Number(unicode[1]);
    const data = [];
    for (let i = 0; i < count; i += 1) {
      let s = "";
      for (let j = 0; j < width; j += 1) {
        const cp = body.readUInt32LE((i * width + j) * 4);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      data.push(s);
    }
    return { dtype: descr, shape, data };
  }
  const entry = DTYPES[descr];
  if (!entry) throw new Error(`${name}: unsupported dtype ${descr}`);
  const [Type, size] = entry;
  const copy = new Uint8Array(count * size);
  copy.set(body.subarray(0, count * size));
  return { dtype: descr, shape, data: new Type(copy.buffer) };
}

/** {name (without .npy): array} of an .npz file. */
export function readNpz(path) {
  const buf = readFileSync(path);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65558); i -= 1) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${path} is not a zip (.npz) file`);
  const entries = buf.readUInt16LE(eocd + 10);
  let pos = buf.readUInt32LE(eocd + 16);
  const arrays = {};
  for (let e = 0; e < entries; e += 1) {
    if (buf.readUInt32LE(pos) !== 0x02014b50) throw new Error(`${path}: bad zip central directory`);
    const method = buf.readUInt16LE(pos + 10);
    const compressed = buf.readUInt32LE(pos + 20);
    const nameLength = buf.readUInt16LE(pos + 28);
    const extraLength = buf.readUInt16LE(pos + 30);
    const commentLength = buf.readUInt16LE(pos + 32);
    const local = buf.readUInt32LE(pos + 42);
    const name = buf.toString("utf8", pos + 46, pos + 46 + nameLength);
    if (compressed === 0xffffffff) throw new Error(`${path}: zip64 entries are not supported`);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataStart, dataStart + compressed);
    let content;
    if (method === 0) content = raw;
    else if (method === 8) content = inflateRawSync(raw);
    else throw new Error(`${path}: zip compression method ${method} is not supported`);
    arrays[name.replace(/\.npy$/, "")] = parseNpy(content, name);
    pos += 46 + nameLength + extraLength + commentLength;
  }
  return arrays;
}
