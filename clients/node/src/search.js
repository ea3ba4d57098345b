// Greedy and beam search over a step function (the decoding rnnkit's manifests name).
//
// step(tokens: number[] (N), states) -> Promise<{logProbs: Float64Array[] (N rows of V), states}>
// Beam rows are laid out item-major: row b * beamWidth + k is beam k of item b.

/** log-softmax of one float32 row, in float64. */
export function logSoftmax(row) {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const log = Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i += 1) out[i] = row[i] - max - log;
  return out;
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i += 1) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy: the most probable token each step, at most `maxSteps` steps (end included);
 * finished rows are fed `endId`; stops when every row has produced `endId`. */
export async function greedySearch(step, states, batch, startId, endId, maxSteps) {
  let tokens = new Array(batch).fill(startId);
  const finished = new Array(batch).fill(false);
  const outputs = Array.from({ length: batch }, () => []);
  for (let t = 0; t < maxSteps; t += 1) {
    const result = await step(tokens, states);
    states = result.states;
    const next = result.logProbs.map(argmax);
    for (let b = 0; b < batch; b += 1) {
      if (finished[b]) continue;
      if (next[b] === endId) finished[b] = true;
      else outputs[b].push(next[b]);
    }
    tokens = next.map((tok, b) => (finished[b] ? endId : tok));
    if (finished.every(Boolean)) break;
  }
  return outputs;
}

/** GNMT length penalty ((5 + len) / 6) ** alpha. */
export function lengthPenalty(length, alpha) {
  if (alpha === 0) return 1;
  return ((5 + Math.max(length, 1)) / 6) ** alpha;
}

/**
 * Beam search. Per step and item: scores of all beam x vocab continuations; the best
 * 2 * beamWidth candidates are visited best first; an end-token candidate is a finished
 * hypothesis (score = log_prob / penalty(step)) only when it ranks among the first
 * beamWidth; other candidates fill the beams in order. An item stops once it holds
 * `numReturn` finished hypotheses that the best open beam cannot beat:
 * max(best_open / penalty(step + 1), best_open / penalty(maxSteps)) <= the numReturn-th
 * finished score. Open beams left after maxSteps are scored with penalty(len(ids)).
 * `reorder(states, parents)` gathers state rows by parent row.
 */
export async function beamSearch(step, states, reorder, batch, startId, endId, maxSteps,
  beamWidth, alpha, numReturn = 1) {
  const rows = batch * beamWidth;
  let tokens = new Array(rows).fill(startId);
  let scores = Array.from({ length: batch }, () => {
    const s = new Array(beamWidth).fill(-Infinity);
    s[0] = 0;
    return s;
  });
  let sequences = Array.from({ length: batch }, () => Array.from({ length: beamWidth }, () => []));
  const finished = Array.from({ length: batch }, () => []);
  const done = new Array(batch).fill(false);
  for (let t = 1; t <= maxSteps; t += 1) {
    const result = await step(tokens, states);
    const logProbs = result.logProbs;
    const vocab = logProbs[0].length;
    const numCandidates = Math.min(2 * beamWidth, beamWidth * vocab);
    const newScores = Array.from({ length: batch }, () => new Array(beamWidth).fill(-Infinity));
    const parents = new Array(rows);
    for (let b = 0; b < batch; b += 1) {
      for (let k = 0; k < beamWidth; k += 1) parents[b * beamWidth + k] = b * beamWidth;
    }
    const newTokens = new Array(rows).fill(endId);
    const newSequences = [];
    for (let b = 0; b < batch; b += 1) {
      if (done[b]) {
        newSequences.push(sequences[b]);
        continue;
      }
      // Top candidates of this item, best first (ties: lower flat index first).
      const top = [];
      for (let k = 0; k < beamWidth; k += 1) {
        const base = scores[b][k];
        const row = logProbs[b * beamWidth + k];
        for (let v = 0; v < vocab; v += 1) {
          const value = base + row[v];
          if (top.length < numCandidates) {
            top.push([value, k * vocab + v]);
            if (top.length === numCandidates) top.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
          } else if (value > top[numCandidates - 1][0]) {
            top[numCandidates - 1] = [value, k * vocab + v];
            for (let i = numCandidates - 1; i > 0 && top[i][0] > top[i - 1][0]; i -= 1) {
              [top[i], top[i - 1]] = [top[i - 1], top[i]];
            }
          }
        }
      }
      top.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
      const itemSequences = Array.from({ length: beamWidth }, () => []);
      let kept = 0;
      for (let rank = 0; rank < top.length; rank += 1) {
        const [value, flat] = top[rank];
        if (!Number.isFinite(value)) break;
        const beam = Math.floor(flat / vocab);
        const token = flat % vocab;
        if (token === endId) {
          if (rank < beamWidth) {
            finished[b].push({ ids: [...sequences[b][beam]], score: value / lengthPenalty(t, alpha),
              logProb: value, finished: true });
          }
          continue;
        }
        const slot = b * beamWidth + kept;
        newScores[b][kept] = value;
        parents[slot] = b * beamWidth + beam;
        newTokens[slot] = token;
        itemSequences[kept] = [...sequences[b][beam], token];
        kept += 1;
        if (kept === beamWidth) break;
      }
      newSequences.push(itemSequences);
      if (finished[b].length >= numReturn) {
        const best = finished[b].map((h) => h.score).sort((x, y) => y - x);
        const worstKept = best[numReturn - 1];
        const bestOpen = Math.max(...newScores[b]);
        if (!Number.isFinite(bestOpen)) done[b] = true;
        else if (t < maxSteps) {
          const bound = Math.max(bestOpen / lengthPenalty(t + 1, alpha),
            bestOpen / lengthPenalty(maxSteps, alpha));
          if (bound <= worstKept) done[b] = true;
        }
      }
    }
    scores = newScores.map((s, b) => (done[b] ? s.map(() => -Infinity) : s));
    sequences = newSequences;
    states = reorder(result.states, parents);
    tokens = newTokens;
    if (done.every(Boolean)) break;
  }
  const results = [];
  for (let b = 0; b < batch; b += 1) {
    const candidates = [...finished[b]];
    if (!done[b]) {
      for (let k = 0; k < beamWidth; k += 1) {
        const value = scores[b][k];
        if (Number.isFinite(value)) {
          candidates.push({ ids: [...sequences[b][k]],
            score: value / lengthPenalty(sequences[b][k].length, alpha), logProb: value, finished: false });
        }
      }
    }
    // Stable sort by score, best first (insertion order on ties, like Python's sort).
    candidates.sort((x, y) => y.score - x.score);
    results.push(candidates.slice(0, numReturn));
  }
  return results;
}
