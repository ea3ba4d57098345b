#!/usr/bin/env node
// rnnkit reference Node.js client.
//
//   node src/cli.js EXPORT_DIR [--sample | --text "..." | --audio-npz FILE | --image FILE.png]... [--method greedy|beam]
//                  [--quantization none|int8|float16] [--threads N] [--batch-size N] [--tokenize]
//
// Prints one JSON object per line: {"index", "input", ...decoded output}. With --sample it
// runs the export's held-out sample (the file the manifest names); --audio-npz reads 16 kHz
// int16 waveforms from an .npz in the held-out sample's layout (`audio`, `offsets`), at
// --sample-rate Hz (default: the model's; other rates are resampled). --tokenize prints the
// source token ids instead of running the model.

import { ExportDir } from "./export_dir.js";
import { createCaptioning } from "./apps/captioning.js";
import { createSentiment } from "./apps/sentiment.js";
import { createSpeech } from "./apps/speech_to_text.js";
import { createTranslation } from "./apps/translation.js";

const APPS = { sentiment: createSentiment, translation: createTranslation, speech_to_text: createSpeech,
  captioning: createCaptioning };

function usage(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { texts: [], sample: false, method: null, quantization: "none", threads: 0,
    batchSize: 0, tokenize: false, dir: null };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    if (a === "--sample") args.sample = true;
    else if (a === "--text") args.texts.push(value());
    else if (a === "--audio-npz") args.audioNpz = value();
    else if (a === "--sample-rate") args.sampleRate = Number(value());
    else if (a === "--image") args.texts.push(value());
    else if (a === "--method") args.method = value();
    else if (a === "--quantization") args.quantization = value();
    else if (a === "--threads") args.threads = Number(value());
    else if (a === "--batch-size") args.batchSize = Number(value());
    else if (a === "--tokenize") args.tokenize = true;
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else if (args.dir === null) args.dir = a;
    else usage(`unexpected argument ${a}`);
  }
  if (args.dir === null) usage("EXPORT_DIR is required");
  if (!["none", "int8", "float16"].includes(args.quantization)) usage(`--quantization must be none, int8 or float16. Received: ${args.quantization}`);
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let exp;
  try {
    exp = new ExportDir(args.dir);
  } catch (error) {
    usage(error.message);
  }
  const appName = exp.field("app");
  const create = APPS[appName];
  if (!create) usage(`app ${JSON.stringify(appName)} is not supported by this client (supported: ${Object.keys(APPS).join(", ")})`);
  const app = await create(exp, { quantization: args.quantization, threads: args.threads,
    batchSize: args.batchSize });
  let inputs = args.sample ? app.heldoutSample() : args.texts;
  if (args.audioNpz) {
    if (!app.readWaves) usage(`--audio-npz is for speech_to_text exports, not ${appName}`);
    inputs = args.sampleRate ? app.readWaves(args.audioNpz, args.sampleRate) : app.readWaves(args.audioNpz);
  }
  if (!inputs.length) usage("give --sample or at least one --text");
  const lines = [];
  if (args.tokenize) {
    inputs.forEach((input, index) => lines.push({ index, input, ids: app.encode(input) }));
  } else {
    const results = args.method ? await app.predict(inputs, args.method) : await app.predict(inputs);
    const shown = (input) => (typeof input === "string" && !app.describe ? input : app.describe(input));
    results.forEach((r, index) => lines.push({ index, input: shown(inputs[index]), ...r }));
  }
  process.stdout.write(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
}

main().catch((error) => {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(2);
});
