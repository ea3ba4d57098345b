// Decode 8-bit, non-interlaced PNG files (grey, grey+alpha, RGB, RGBA) without dependencies.

import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";

const CHANNELS = { 0: 1, 2: 3, 4: 2, 6: 4 };
const MODES = { 0: "L", 2: "RGB", 4: "LA", 6: "RGBA" };

function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** {width, height, mode ("L" | "LA" | "RGB" | "RGBA"), channels, data: Uint8Array (H*W*C)} */
export function readPng(path) {
  const buf = readFileSync(path);
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x89504e47 || buf.readUInt32BE(4) !== 0x0d0a1a0a) {
    throw new Error(`${path} is not a PNG file`);
  }
  let pos = 8;
  let header = null;
  const idat = [];
  while (pos + 8 <= buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + length);
    if (type === "IHDR") {
      header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), depth: body[8],
        colorType: body[9], interlace: body[12] };
    } else if (type === "IDAT") idat.push(body);
    else if (type === "tRNS" || type === "eXIf") {
      throw new Error(`${path}: PNG ${type} chunks (transparency key / EXIF orientation) are not supported`);
    }
    else if (type === "IEND") break;
    pos += 12 + length;
  }
  if (!header || !idat.length) throw new Error(`${path}: truncated PNG (no IHDR/IDAT)`);
  const { width, height, depth, colorType, interlace } = header;
  const channels = CHANNELS[colorType];
  if (depth !== 8 || !channels || interlace !== 0) {
    throw new Error(`${path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported `
      + `(bit depth ${depth}, color type ${colorType}, interlace ${interlace})`);
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error(`${path}: truncated image data`);
  const data = new Uint8Array(height * stride);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    for (let x = 0; x < stride; x += 1) {
      const a = x >= channels ? data[out + x - channels] : 0;
      const b = y > 0 ? data[out - stride + x] : 0;
      const c = x >= channels && y > 0 ? data[out - stride + x - channels] : 0;
      let value = line[x];
      if (filter === 1) value += a;
      else if (filter === 2) value += b;
      else if (filter === 3) value += (a + b) >> 1;
      else if (filter === 4) value += paeth(a, b, c);
      else if (filter !== 0) throw new Error(`${path}: bad PNG filter ${filter}`);
      data[out + x] = value & 0xff;
    }
  }
  return { width, height, mode: MODES[colorType], channels, data };
}
