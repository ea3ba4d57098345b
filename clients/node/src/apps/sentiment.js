// Sentiment: text -> label + probabilities over the single graph `model`.
//
// Manifest fields read: tokenizer.file, tokenizer.max_length, tokenizer.unk_id,
// tokenizer.pad_id, padding, task.input, labels, graphs.model.{inputs,outputs,files.onnx},
// metrics.test_sample_accuracy.file (held-out sample).

import { readFileSync } from "node:fs";

import { ArtifactError, padRows, stableOrder } from "../export_dir.js";

export async function createSentiment(exp, options = {}) {
  const tokenizer = exp.tokenizer(exp.field("tokenizer.file"));
  const maxLength = exp.field("tokenizer.max_length");
  const unkId = exp.field("tokenizer.unk_id");
  const padId = exp.field("tokenizer.pad_id");
  if (exp.field("padding") !== "right") throw new ArtifactError("only right padding is supported");
  const inputName = exp.field("task.input");
  const labels = exp.field("labels");
  const quantization = options.quantization || "none";
  const batchSize = options.batchSize || 64;

  const encode = (text) => {
    const ids = tokenizer.encode(text).slice(0, maxLength);
    return ids.length ? ids : [unkId]; // empty text: one <unk> (RNN ops need length >= 1)
  };

  async function predict(texts) {
    const rows = texts.map(encode);
    const results = new Array(rows.length);
    // Similar lengths share a batch; results go back in input order.
    const order = stableOrder(rows.map((r) => r.length));
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const batch = padRows(chunk.map((i) => rows[i]), padId);
      const out = await exp.run("model", { [inputName]: batch }, quantization, options.threads);
      const probs = out.probabilities;
      const classes = probs.dims[1];
      chunk.forEach((index, row) => {
        const p = Array.from(probs.data.slice(row * classes, (row + 1) * classes));
        let best = 0;
        for (let c = 1; c < classes; c += 1) if (p[c] > p[best]) best = c;
        results[index] = { label: labels[best], probabilities: p };
      });
    }
    return results;
  }

  function heldoutSample() {
    const file = exp.file(exp.field("metrics.test_sample_accuracy.file"));
    return readFileSync(file, "utf8").split("\n").filter((l) => l.trim())
      .map((l) => JSON.parse(l).text);
  }

  return { predict, encode, heldoutSample };
}
