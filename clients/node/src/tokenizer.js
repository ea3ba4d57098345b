// A reader for Hugging Face `tokenizer.json` files (the parts rnnkit exports use).
//
// Supported: added tokens matched literally on the raw text; normalizers NFKC, NFC,
// Lowercase, Sequence; pre-tokenizers WhitespaceSplit, Whitespace-free Split (regex or
// string, "Isolated"/"Removed" behaviour), Metaspace, Sequence; models WordLevel and BPE
// (merges by rank, unknown characters -> unk, no byte fallback); decoders Metaspace,
// WordPiece and Fuse. Anything else is rejected with a clear error instead of being guessed.

import { readFileSync } from "node:fs";

export class TokenizerError extends Error {}

// Unicode classes of the Oniguruma regex engine used by `tokenizers` (JavaScript's \w, \d
// and \s are ASCII-only or differ, so they are spelled out). \w has no Join_Control (ZWJ and
// ZWNJ are not word characters there): checked against the library on random Unicode text.
const CLASS_ITEMS = {
  w: "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}",
  d: "\\p{Nd}",
  s: "\\p{White_Space}",
};

/** A tokenizers-library regex pattern as an equivalent JavaScript RegExp (flags "gu"). */
export function translateRegex(pattern) {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      const next = pattern[i + 1];
      const lower = next.toLowerCase();
      if (lower in CLASS_ITEMS) {
        const items = CLASS_ITEMS[lower];
        const negated = next !== lower;
        if (inClass) {
          if (negated) {
            throw new TokenizerError(`unsupported negated class \\${next} inside [...] in ${pattern}`);
          }
          out += items;
        } else {
          out += negated ? `[^${items}]` : `[${items}]`;
        }
      } else {
        out += c + next;
      }
      i += 1;
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass) inClass = false;
    out += c;
  }
  return new RegExp(out, "gu");
}

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// ---------------------------------------------------------------- normalizers
function buildNormalizer(spec) {
  if (!spec) return (s) => s;
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.normalizers.map(buildNormalizer);
      return (s) => steps.reduce((acc, f) => f(acc), s);
    }
    case "NFKC":
      return (s) => s.normalize("NFKC");
    case "NFC":
      return (s) => s.normalize("NFC");
    case "Lowercase":
      // Per character, like Rust's char::to_lowercase (no final-sigma context rule).
      return (s) => Array.from(s, (ch) => ch.toLowerCase()).join("");
    default:
      throw new TokenizerError(`unsupported normalizer type ${JSON.stringify(spec.type)}`);
  }
}

// ---------------------------------------------------------------- pre-tokenizers
// Each pre-tokenizer maps a list of pieces (strings) to a new list of pieces.
function splitByRegex(pieces, regex, behavior, invert) {
  if (invert) throw new TokenizerError("Split with invert=true is not supported");
  const out = [];
  for (const piece of pieces) {
    let last = 0;
    regex.lastIndex = 0;
    for (const match of piece.matchAll(regex)) {
      if (match[0].length === 0) continue;
      if (match.index > last) out.push(piece.slice(last, match.index));
      if (behavior === "Isolated") out.push(match[0]);
      else if (behavior !== "Removed") {
        throw new TokenizerError(`unsupported Split behavior ${JSON.stringify(behavior)}`);
      }
      last = match.index + match[0].length;
    }
    if (last < piece.length) out.push(piece.slice(last));
  }
  return out;
}

function buildPreTokenizer(spec) {
  if (!spec) return (pieces) => pieces;
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.pretokenizers.map(buildPreTokenizer);
      return (pieces) => steps.reduce((acc, f) => f(acc), pieces);
    }
    case "WhitespaceSplit": {
      const ws = /\p{White_Space}+/u;
      return (pieces) => pieces.flatMap((p) => p.split(ws).filter((x) => x.length > 0));
    }
    case "Split": {
      const pattern = spec.pattern.Regex !== undefined
        ? translateRegex(spec.pattern.Regex)
        : new RegExp(escapeRegex(spec.pattern.String), "gu");
      return (pieces) => splitByRegex(pieces, pattern, spec.behavior, spec.invert);
    }
    case "Metaspace": {
      const rep = spec.replacement;
      const scheme = spec.prepend_scheme ?? (spec.add_prefix_space === false ? "never" : "always");
      if (scheme !== "always" && scheme !== "never") {
        throw new TokenizerError(`unsupported Metaspace prepend_scheme ${JSON.stringify(scheme)}`);
      }
      const split = spec.split !== false;
      return (pieces) => pieces.flatMap((piece) => {
        let s = piece.replaceAll(" ", rep);
        if (scheme === "always" && !s.startsWith(rep)) s = rep + s;
        if (!split) return [s];
        // Split before every replacement character, which starts the next piece.
        const parts = [];
        let start = 0;
        for (let i = s.indexOf(rep, 1); i !== -1; i = s.indexOf(rep, i + rep.length)) {
          if (i > start) parts.push(s.slice(start, i));
          start = i;
        }
        if (start < s.length) parts.push(s.slice(start));
        return parts;
      });
    }
    default:
      throw new TokenizerError(`unsupported pre_tokenizer type ${JSON.stringify(spec.type)}`);
  }
}

// ---------------------------------------------------------------- models
function buildModel(spec, vocabExtra) {
  const vocab = new Map(Object.entries(spec.vocab));
  for (const [token, id] of vocabExtra) if (!vocab.has(token)) vocab.set(token, id);
  if (spec.unk_token === undefined || spec.unk_token === null) {
    throw new TokenizerError("the tokenizer model has no unk_token");
  }
  const unkId = vocab.get(spec.unk_token);
  if (unkId === undefined) throw new TokenizerError(`unk_token ${spec.unk_token} is not in the vocabulary`);
  if (spec.type === "WordLevel") {
    return { vocab, unkId, tokenize: (piece) => [vocab.has(piece) ? vocab.get(piece) : unkId] };
  }
  if (spec.type === "BPE") {
    if (spec.byte_fallback) throw new TokenizerError("BPE byte_fallback is not supported");
    if (spec.continuing_subword_prefix || spec.end_of_word_suffix) {
      throw new TokenizerError("BPE subword prefixes/suffixes are not supported");
    }
    if (spec.dropout) throw new TokenizerError("BPE dropout is not supported");
    const ranks = new Map();
    spec.merges.forEach((merge, rank) => {
      const [a, b] = Array.isArray(merge) ? merge : merge.split(" ");
      ranks.set(`${a}\u0000${b}`, rank);
    });
    const cache = new Map();
    const tokenize = (piece) => {
      const cached = cache.get(piece);
      if (cached) return cached;
      let symbols = Array.from(piece);
      // Unknown characters become <unk> each (fuse_unk false); they never merge.
      const known = symbols.map((s) => vocab.has(s));
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < symbols.length; i += 1) {
          if (!known[i] || !known[i + 1]) continue;
          const rank = ranks.get(`${symbols[i]}\u0000${symbols[i + 1]}`);
          if (rank !== undefined && rank < bestRank) {
            bestRank = rank;
            best = i;
          }
        }
        if (best < 0) break;
        const merged = symbols[best] + symbols[best + 1];
        if (!vocab.has(merged)) throw new TokenizerError(`BPE merge result ${merged} is not in the vocabulary`);
        symbols = [...symbols.slice(0, best), merged, ...symbols.slice(best + 2)];
        known.splice(best, 2, true);
      }
      const ids = symbols.map((s, i) => (known[i] ? vocab.get(s) : unkId));
      if (spec.fuse_unk) throw new TokenizerError("BPE fuse_unk is not supported");
      cache.set(piece, ids);
      return ids;
    };
    return { vocab, unkId, tokenize };
  }
  throw new TokenizerError(`unsupported model type ${JSON.stringify(spec.type)}`);
}

// ---------------------------------------------------------------- decoders
const WORDPIECE_CLEANUP = [
  [" .", "."], [" ?", "?"], [" !", "!"], [" ,", ","], [" ' ", "'"], [" n't", "n't"],
  [" 'm", "'m"], [" do not", " don't"], [" 's", "'s"], [" 've", "'ve"], [" 're", "'re"],
];

function buildDecoder(spec) {
  if (!spec) return (tokens) => tokens.join(" ");
  switch (spec.type) {
    case "Metaspace": {
      const rep = spec.replacement;
      const scheme = spec.prepend_scheme ?? "always";
      return (tokens) => tokens.map((token, i) => Array.from(token, (c) => {
        if (c !== rep) return c;
        return i === 0 && scheme !== "never" ? "" : " ";
      }).join("")).join("");
    }
    case "WordPiece": {
      const prefix = spec.prefix;
      return (tokens) => tokens.map((token, i) => {
        let t = token;
        if (i !== 0) t = t.startsWith(prefix) ? t.slice(prefix.length) : ` ${t}`;
        if (spec.cleanup) for (const [from, to] of WORDPIECE_CLEANUP) t = t.replaceAll(from, to);
        return t;
      }).join("");
    }
    case "Fuse":
      return (tokens) => tokens.join("");
    default:
      throw new TokenizerError(`unsupported decoder type ${JSON.stringify(spec.type)}`);
  }
}

export class Tokenizer {
  /** @param {object} spec parsed tokenizer.json */
  constructor(spec, source = "tokenizer.json") {
    this.source = source;
    if (spec.post_processor) {
      throw new TokenizerError(`${source}: post_processor is not supported (rnnkit adds specials itself)`);
    }
    this.added = (spec.added_tokens || []).map((t) => {
      if (t.normalized || t.single_word || t.lstrip || t.rstrip) {
        throw new TokenizerError(`${source}: added token ${t.content} uses unsupported matching options`);
      }
      return { content: t.content, id: t.id };
    });
    this.normalize = buildNormalizer(spec.normalizer);
    this.preTokenize = buildPreTokenizer(spec.pre_tokenizer);
    this.model = buildModel(spec.model, this.added.map((t) => [t.content, t.id]));
    this.decoder = buildDecoder(spec.decoder);
    this.idToToken = new Map();
    for (const [token, id] of this.model.vocab) this.idToToken.set(id, token);
    for (const t of this.added) this.idToToken.set(t.id, t.content);
    this.addedRegex = this.added.length
      ? new RegExp(
        [...this.added].sort((a, b) => b.content.length - a.content.length)
          .map((t) => escapeRegex(t.content)).join("|"), "gu")
      : null;
    this.addedIds = new Map(this.added.map((t) => [t.content, t.id]));
  }

  static load(path) {
    let spec;
    try {
      spec = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new TokenizerError(`cannot read tokenizer file ${path}: ${error.message}`);
    }
    return new Tokenizer(spec, path);
  }

  get unkId() {
    return this.model.unkId;
  }

  /** Token ids of `text` (no special tokens added). */
  encode(text) {
    const ids = [];
    const segment = (part) => {
      if (!part) return;
      for (const piece of this.preTokenize([this.normalize(part)])) {
        for (const id of this.model.tokenize(piece)) ids.push(id);
      }
    };
    if (!this.addedRegex) {
      segment(text);
      return ids;
    }
    let last = 0;
    for (const match of text.matchAll(this.addedRegex)) {
      segment(text.slice(last, match.index));
      ids.push(this.addedIds.get(match[0]));
      last = match.index + match[0].length;
    }
    segment(text.slice(last));
    return ids;
  }

  /** The decoder's text for `ids` as given (no ids are skipped here). */
  decodeIds(ids) {
    const tokens = ids.map((id) => {
      const token = this.idToToken.get(id);
      if (token === undefined) throw new TokenizerError(`${this.source}: unknown id ${id}`);
      return token;
    });
    return this.decoder(tokens);
  }
}
