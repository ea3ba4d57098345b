// Speech to text: 16 kHz mono waveforms -> transcripts over the single graph `model` (CTC).
//
// Manifest fields read: features.sample_rate, features.frame_step, vocabulary.{file, blank_id},
// decoding.decoder, chunking.{max_audio_seconds, search_seconds, min_samples}, heldout_sample.file,
// graphs.model.{inputs,outputs,files.onnx}.
// Other rates are resampled with the Python runtime's resampler (see RESAMPLER).

import { readFileSync } from "node:fs";

import { ArtifactError, stableOrder } from "../export_dir.js";
import { readNpz } from "../npz.js";

// The Python runtime's resampler (rnnkit.data.audio.resample), not yet a manifest field:
// a polyphase Kaiser-windowed sinc (half width 16 zero crossings, beta 8, cutoff 0.95 of the
// lower Nyquist), float32 filter table, output sample n at input time n * orig / target.
const RESAMPLER = { halfWidth: 16, beta: 8.0, guard: 0.95 };

function besselI0(x) {
  let term = 1;
  let sum = 1;
  const q = (x / 2) ** 2;
  for (let k = 1; k < 500 && term > sum * 1e-17; k += 1) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

function gcd(a, b) {
  return b ? gcd(b, a % b) : a;
}

/** Resample a float32 waveform from `orig` Hz to `target` Hz (see RESAMPLER). */
export function resample(wave, orig, target) {
  if (orig === target || wave.length === 0) return Float32Array.from(wave);
  const g = gcd(orig, target);
  const up = target / g;
  const down = orig / g;
  const cutoff = Math.min(1, up / down) * RESAMPLER.guard;
  const taps = Math.ceil(RESAMPLER.halfWidth / cutoff);
  const m = 2 * taps + 1;
  const alpha = (m - 1) / 2;
  const i0Beta = besselI0(RESAMPLER.beta);
  const window = Float64Array.from({ length: m }, (_, n) => besselI0(RESAMPLER.beta * Math.sqrt(1 - ((n - alpha) / alpha) ** 2)) / i0Beta);
  const width = 2 * taps;
  const table = new Float32Array(up * width);
  for (let p = 0; p < up; p += 1) {
    for (let j = 0; j < width; j += 1) {
      const distance = (j - taps + 1) - p / up;
      // Linear interpolation of the sampled window at `distance` (grid -taps..taps).
      const left = Math.min(Math.floor(distance) + taps, m - 2);
      const w = (window[left + 1] - window[left]) * (distance - (left - taps)) + window[left];
      const x = Math.PI * (cutoff * distance === 0 ? 1e-20 : cutoff * distance);
      table[p * width + j] = cutoff * (Math.sin(x) / x) * w;
    }
  }
  const count = Math.ceil((wave.length * up) / down);
  const out = new Float32Array(count);
  for (let n = 0; n < count; n += 1) {
    const position = n * down;
    const base = Math.floor(position / up);
    const phase = position % up;
    let acc = 0;
    for (let j = 0; j < width; j += 1) {
      const i = base - taps + 1 + j; // input index (zeros outside)
      if (i >= 0 && i < wave.length) acc += wave[i] * table[phase * width + j];
    }
    out[n] = acc;
  }
  return out;
}

const INT16_SCALE = 32767; // the held-out sample's int16 scale (not yet a manifest field)
const BATCH = 16;

/** float32 sum in NumPy's pairwise order (8 accumulators, halves above 128 elements), so
 * window energies and their ties come out as NumPy's. */
export function pairwiseSum(a, start, n) {
  const f = Math.fround;
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i += 1) s = f(s + a[start + i]);
    return s;
  }
  if (n <= 128) {
    const r = Array.from({ length: 8 }, (_, j) => a[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j += 1) r[j] = f(r[j] + a[start + i + j]);
    let s = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i += 1) s = f(s + a[start + i]);
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return f(pairwiseSum(a, start, half) + pairwiseSum(a, start + half, n - half));
}

/** Chunks of at most maxSamples, cut at the quietest 10 ms window (the latest one on ties)
 * within the last min(searchSeconds, maxSamples / 2) of each chunk, at that window's middle. */
export function chunkWaveform(wave, maxSamples, sampleRate, searchSeconds) {
  const chunks = [];
  let start = 0;
  const window = Math.max(1, Math.floor(sampleRate / 100));
  while (wave.length - start > maxSamples) {
    const end = start + maxSamples;
    const search = Math.min(Math.trunc(searchSeconds * sampleRate), Math.floor(maxSamples / 2));
    const usable = Math.floor(search / window) * window;
    let cut = end;
    if (usable >= window) {
      const first = end - usable; // windows tile the region's last `usable` samples
      const count = usable / window;
      let best = Infinity;
      let quietest = 0; // index counted from the end
      for (let k = 0; k < count; k += 1) {
        const w0 = first + (count - 1 - k) * window;
        const squares = new Float32Array(window);
        for (let i = 0; i < window; i += 1) squares[i] = Math.fround(wave[w0 + i] * wave[w0 + i]);
        const energy = pairwiseSum(squares, 0, window);
        if (energy < best) {
          best = energy;
          quietest = k;
        }
      }
      cut = end - quietest * window - Math.floor(window / 2);
    }
    cut = Math.max(start + 1, Math.min(cut, end));
    chunks.push(wave.subarray(start, cut));
    start = cut;
  }
  chunks.push(wave.subarray(start));
  return chunks.filter((c) => c.length > 0);
}

export async function createSpeech(exp, options = {}) {
  const sampleRate = exp.field("features.sample_rate");
  const frameStep = exp.field("features.frame_step");
  const vocabulary = JSON.parse(readFileSync(exp.file(exp.field("vocabulary.file")), "utf8"));
  const blankId = exp.field("vocabulary.blank_id");
  const decoder = exp.field("decoding.decoder");
  if (decoder !== "ctc_greedy") throw new ArtifactError(`decoder ${decoder} is not supported (only ctc_greedy)`);
  const maxSamples = Math.trunc(exp.field("chunking.max_audio_seconds") * sampleRate);
  const minSamples = exp.field("chunking.min_samples");
  const searchSeconds = exp.field("chunking.search_seconds");
  const spec = exp.graphSpec("model");
  const [waveName, lengthsName] = spec.inputs.map((i) => i.name);
  const [logProbsName, logitLengthsName] = spec.outputs.map((o) => o.name);
  const quantization = options.quantization || "none";

  function decodeIds(ids) {
    const text = ids.filter((i) => i !== blankId && i >= 0 && i < vocabulary.length).map((i) => vocabulary[i]).join("");
    return text.split(/\s+/u).filter(Boolean).join(" ");
  }

  async function runChunks(waves) {
    const texts = new Array(waves.length).fill("");
    const order = stableOrder(waves.map((w) => w.length));
    for (let start = 0; start < order.length; start += BATCH) {
      const group = order.slice(start, start + BATCH).filter((i) => waves[i].length >= minSamples);
      if (!group.length) continue;
      let width = Math.max(1, ...group.map((i) => waves[i].length));
      width = Math.ceil(width / frameStep) * frameStep;
      const data = new Float32Array(group.length * width);
      group.forEach((i, row) => data.set(waves[i], row * width));
      const lengths = Int32Array.from(group.map((i) => waves[i].length));
      const out = await exp.run("model", {
        [waveName]: { data, dims: [group.length, width] },
        [lengthsName]: { data: lengths, dims: [group.length] },
      }, quantization, options.threads);
      const lp = out[logProbsName];
      const [, frames, classes] = lp.dims;
      group.forEach((index, row) => {
        const valid = Math.min(Number(out[logitLengthsName].data[row]), frames);
        const ids = [];
        let previous = -1;
        for (let t = 0; t < valid; t += 1) {
          const base = (row * frames + t) * classes;
          let best = 0;
          for (let c = 1; c < classes; c += 1) if (lp.data[base + c] > lp.data[base + best]) best = c;
          if (best !== previous && best !== blankId) ids.push(best);
          previous = best;
        }
        texts[index] = decodeIds(ids);
      });
    }
    return texts;
  }

  async function predict(waves) {
    const pieces = [];
    const owners = [];
    waves.forEach((wave, index) => {
      for (const chunk of chunkWaveform(wave, maxSamples, sampleRate, searchSeconds)) {
        pieces.push(chunk);
        owners.push(index);
      }
    });
    const texts = await runChunks(pieces);
    const joined = waves.map(() => []);
    texts.forEach((text, k) => { if (text) joined[owners[k]].push(text); });
    return joined.map((parts, index) => ({ transcript: parts.join(" "), samples: waves[index].length }));
  }

  /** Waveforms of an .npz in the held-out layout: int16 `audio` + int64 `offsets`. */
  function readWaves(file, rate = sampleRate) {
    const arrays = readNpz(file);
    const { audio, offsets } = arrays;
    if (!audio || !offsets) throw new Error(`${file} needs arrays audio and offsets`);
    const floats = Float32Array.from(audio.data, (x) => Math.fround(x / INT16_SCALE));
    const cuts = Array.from(offsets.data, Number);
    const waves = cuts.slice(0, -1).map((s, i) => floats.subarray(s, cuts[i + 1]));
    return rate === sampleRate ? waves : waves.map((w) => resample(w, rate, sampleRate));
  }

  function heldoutSample() {
    return readWaves(exp.file(exp.field("heldout_sample.file")));
  }

  return { predict, heldoutSample, readWaves, describe: (w) => `${w.length} samples` };
}
