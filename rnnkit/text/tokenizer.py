"""Word, character and BPE tokenizers on the ``tokenizers`` library (no TensorFlow).

A trained ``Tokenizer`` is saved as one ``tokenizer.json`` that the plain
``tokenizers`` library loads (``tokenizers.Tokenizer.from_file``) and that
gives the same ids there. The rnnkit settings (``kind``, ``lowercase``) are
not stored separately: ``Tokenizer.load`` reads them back from the file's
model, pre-tokenizer and normalizer, so several tokenizers can share one
``assets/`` directory under different file names.

Pipelines (all kinds: normalizer NFKC, plus Lowercase when ``lowercase``):

- ``"word"``: split on whitespace, then words ``\\w+`` (keeping inner
  apostrophes: ``don't``) and single punctuation marks; WordLevel model.
  Decoding joins words with spaces and removes the space before ``. , ! ?``
  and inside brackets.
- ``"char"``: every character is a token, spaces and newlines included, so
  ``decode(encode(text)) == normalized text`` for characters seen in training.
- ``"bpe"``: Metaspace pre-tokenizer (``▁`` marks a word start) and a BPE
  model; unseen words are covered by sub-words, unseen characters give
  ``<unk>``. With ``split_digits=True`` every ASCII digit is also a piece of
  its own (``SEK649.92`` → ``▁SEK 6 4 9 . 9 2``), so numbers are copied digit
  by digit instead of through merged digit groups.

Reserved ids: ``pad=0 <pad>``, ``unk=1 <unk>``, ``start=2 <s>``, ``end=3 </s>``.
No post-processor is set: ``encode`` adds no special tokens (the plain library's
``encode`` therefore gives the same ids); ``encode_batch(add_start_end=True)``
adds ``<s>``/``</s>`` itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN]
KINDS = ("word", "char", "bpe")
DEFAULT_FILENAME = "tokenizer.json"
DEFAULT_BPE_VOCAB_SIZE = 8000

_WORD_PATTERN = r"\w+(?:['’]\w+)*|[^\w\s]"
_DIGIT_PATTERN = r"[0-9]"
_CHAR_PATTERN = r"[\s\S]"
_OPEN_BRACKET_SPACE = re.compile(r"([(\[{])\s+")
_SPACE_CLOSE_BRACKET = re.compile(r"\s+([)\]}:;%])")


def _build(kind: str, lowercase: bool, split_digits: bool = False):
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    if kind == "bpe":
        backend = HFTokenizer(models.BPE(unk_token=UNK_TOKEN))
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        if split_digits:
            backend.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Metaspace(),
                pre_tokenizers.Split(Regex(_DIGIT_PATTERN), behavior="isolated"),
            ])
        backend.decoder = decoders.Metaspace()
    else:
        backend = HFTokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        if kind == "word":
            backend.pre_tokenizer = pre_tokenizers.Sequence(
                [
                    pre_tokenizers.WhitespaceSplit(),
                    pre_tokenizers.Split(Regex(_WORD_PATTERN), behavior="isolated"),
                ]
            )
            # WordPiece with a prefix that never occurs: joins with spaces and
            # cleans " ." " ," " !" " ?" " n't" etc.
            backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)
        else:
            backend.pre_tokenizer = pre_tokenizers.Split(Regex(_CHAR_PATTERN), behavior="isolated")
            backend.decoder = decoders.Fuse()
    steps = [normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    backend.normalizer = normalizers.Sequence(steps)
    return backend


def _infer_settings(spec: dict) -> tuple[str, bool]:
    """(kind, lowercase) from a tokenizer.json written by ``Tokenizer.save``."""
    model_type = (spec.get("model") or {}).get("type")
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    pattern = (pre_tokenizer.get("pattern") or {}).get("Regex")
    if model_type == "BPE":
        kind = "bpe"
    elif model_type == "WordLevel":
        kind = (
            "char" if pre_tokenizer.get("type") == "Split" and pattern == _CHAR_PATTERN else "word"
        )
    else:
        from rnnkit.errors import ArtifactError

        raise ArtifactError(
            "tokenizer.json must hold a 'WordLevel' or 'BPE' model written by rnnkit. "
            f"Received: model type {model_type!r}"
        )
    lowercase = '"Lowercase"' in json.dumps(spec.get("normalizer"))
    return kind, lowercase


def companion_config_name(filename: str) -> str:
    """``tokenizer.json`` → ``tokenizer_config.json``; ``source_tokenizer.json`` →
    ``source_tokenizer_config.json``: the file JS/Rust tokenizer readers look for beside it."""
    return f"{filename[:-len('.json')]}_config.json"


def companion_config(tokenizer_json: str, filename: str = DEFAULT_FILENAME) -> dict:
    """The ``tokenizer_config.json`` for a ``tokenizer.json`` written by ``Tokenizer.save``.

    Readers such as transformers.js take ``unk_token`` from here rather than from the model
    (without it a word-level reader maps unknown words to id 0, the padding id). The special
    tokens are the reserved ones present in the vocabulary; ``add_bos_token``/``add_eos_token``
    are false because ``encode`` adds no special tokens (the apps add them where a graph
    wants them, as the manifest says)."""
    spec = json.loads(tokenizer_json)
    model = spec.get("model") or {}
    vocab = model.get("vocab") or {}
    known = set(vocab) if isinstance(vocab, dict) else {token for token, _ in vocab}
    known |= {entry.get("content") for entry in spec.get("added_tokens") or []}
    config: dict = {"tokenizer_file": filename, "tokenizer_class": "PreTrainedTokenizerFast"}
    for key, token in (("pad_token", PAD_TOKEN), ("unk_token", model.get("unk_token") or UNK_TOKEN),
                       ("bos_token", START_TOKEN), ("eos_token", END_TOKEN)):
        if token in known:
            config[key] = token
    config.update(add_bos_token=False, add_eos_token=False, clean_up_tokenization_spaces=False)
    return config


class Tokenizer:
    """A trained tokenizer: ``Tokenizer.train(...)`` or ``Tokenizer.load(path)``."""

    pad_id = PAD_ID
    unk_id = UNK_ID
    start_id = START_ID
    end_id = END_ID

    def __init__(self, backend, kind: str, lowercase: bool):
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        self._backend = backend
        self.kind = kind
        self.lowercase = bool(lowercase)
        for token_id, token in enumerate(SPECIAL_TOKENS):
            if backend.token_to_id(token) != token_id:
                from rnnkit.errors import ArtifactError

                raise ArtifactError(
                    f"Token {token!r} must have id {token_id}. "
                    f"Received: id={backend.token_to_id(token)}"
                )

    # ------------------------------------------------------------------ build
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        kind: str = "word",
        vocab_size: int | None = None,
        lowercase: bool = True,
        min_frequency: int = 1,
        split_digits: bool = False,
    ) -> Tokenizer:
        """Learn a vocabulary from ``texts``.

        ``vocab_size`` caps the vocabulary (reserved tokens included); ``None``
        keeps every token for word/char and uses 8000 for bpe. Tokens seen
        fewer than ``min_frequency`` times are left out (word/char: they become
        ``<unk>``). ``split_digits`` (bpe only): every digit is its own piece.
        """
        from tokenizers import trainers

        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        if isinstance(texts, str):
            raise ValueError("`texts` must be a list of strings, not one string.")
        texts = [str(t) for t in texts]
        if not any(texts):
            raise ValueError(
                f"`texts` must hold at least one non-empty string. Received: {len(texts)} "
                "texts, all empty"
            )
        if vocab_size is not None and int(vocab_size) <= len(SPECIAL_TOKENS):
            raise ValueError(
                f"`vocab_size` must be greater than {len(SPECIAL_TOKENS)} (the reserved "
                f"tokens). Received: vocab_size={vocab_size}"
            )
        if int(min_frequency) < 1:
            raise ValueError(
                f"`min_frequency` must be >= 1. Received: min_frequency={min_frequency}"
            )
        if split_digits and kind != "bpe":
            raise ValueError(
                f"`split_digits` applies to kind='bpe' only. Received: kind={kind!r}, "
                "split_digits=True"
            )
        options = {"special_tokens": list(SPECIAL_TOKENS), "min_frequency": int(min_frequency)}
        if kind == "bpe":
            options["vocab_size"] = int(vocab_size or DEFAULT_BPE_VOCAB_SIZE)
            options["show_progress"] = False
            trainer = trainers.BpeTrainer(**options)
        else:
            if vocab_size is not None:
                options["vocab_size"] = int(vocab_size)
            options["show_progress"] = False
            trainer = trainers.WordLevelTrainer(**options)
        backend = _build(kind, lowercase, bool(split_digits))
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend, kind, lowercase)

    # ------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer; ``path`` is a ``.json`` file or a directory
        (then ``<dir>/tokenizer.json``). Returns the file written."""
        target = Path(path)
        if target.suffix != ".json":
            target = target / DEFAULT_FILENAME
        target.parent.mkdir(parents=True, exist_ok=True)
        self._backend.save(str(target), pretty=True)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load from a ``tokenizer.json`` file or a directory holding one."""
        from tokenizers import Tokenizer as HFTokenizer

        source = Path(path)
        if source.is_dir():
            source = source / DEFAULT_FILENAME
        if not source.is_file():
            raise FileNotFoundError(f"No tokenizer file at {str(source)!r}")
        text = source.read_text(encoding="utf-8")
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            from rnnkit.errors import ArtifactError

            raise ArtifactError(f"{str(source)!r} is not valid JSON: {error}") from error
        kind, lowercase = _infer_settings(spec)
        return cls(HFTokenizer.from_str(text), kind, lowercase)

    def to_json(self) -> str:
        """The ``tokenizer.json`` content as a string."""
        return self._backend.to_str()

    @property
    def backend(self):
        """The underlying ``tokenizers.Tokenizer``."""
        return self._backend

    @property
    def config(self) -> dict:
        """Settings for a manifest: kind, lowercase, vocab size and reserved ids."""
        return {
            "kind": self.kind,
            "lowercase": self.lowercase,
            "vocab_size": self.vocab_size,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "start_id": START_ID,
            "end_id": END_ID,
        }

    # ---------------------------------------------------------------- encode
    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def tokens(self, text: str) -> list[str]:
        return self._backend.encode(text, add_special_tokens=False).tokens

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._backend.id_to_token(int(token_id))

    def encode(self, text: str, add_start_end: bool = False) -> list[int]:
        ids = list(self._backend.encode(text, add_special_tokens=False).ids)
        return [START_ID, *ids, END_ID] if add_start_end else ids

    def encode_batch(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        add_start_end: bool = False,
        pad_to_max_length: bool = False,
    ) -> np.ndarray:
        """Encode and right-pad with 0 into an int32 array ``(B, T)``.

        ``T`` is the longest row, at most ``max_length``; with
        ``pad_to_max_length=True`` it is exactly ``max_length`` (fixed shapes
        for TFLite). Rows longer than ``max_length`` are cut at the end; with
        ``add_start_end`` the cut keeps ``<s>`` and ``</s>`` (the text is cut).
        """
        if isinstance(texts, str):
            raise ValueError("`texts` must be a list of strings, not one string.")
        if max_length is not None and int(max_length) < (3 if add_start_end else 1):
            raise ValueError(
                f"`max_length` must be >= {3 if add_start_end else 1}. "
                f"Received: max_length={max_length}"
            )
        if pad_to_max_length and max_length is None:
            raise ValueError("`pad_to_max_length=True` needs `max_length`. Received: None")
        encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
        rows = []
        for encoding in encodings:
            ids = list(encoding.ids)
            if max_length is not None:
                ids = ids[: int(max_length) - (2 if add_start_end else 0)]
            if add_start_end:
                ids = [START_ID, *ids, END_ID]
            rows.append(ids)
        width = max((len(r) for r in rows), default=0)
        if pad_to_max_length:
            width = int(max_length)
        out = np.full((len(rows), width), PAD_ID, dtype=np.int32)
        for index, ids in enumerate(rows):
            out[index, : len(ids)] = ids
        return out

    # ---------------------------------------------------------------- decode
    def decode(self, ids: Iterable[int], skip_unk: bool = False) -> str:
        """Text of ``ids``: stops at ``</s>``, skips ``<pad>`` and ``<s>``.
        ``<unk>`` is shown as ``<unk>`` unless ``skip_unk``."""
        kept: list[int] = []
        skip = {PAD_ID, START_ID} | ({UNK_ID} if skip_unk else set())
        for token_id in np.asarray(list(ids), dtype=np.int64).reshape(-1).tolist():
            if token_id == END_ID:
                break
            if token_id not in skip:
                kept.append(int(token_id))
        text = self._backend.decode(kept, skip_special_tokens=False)
        if self.kind == "word":
            text = _OPEN_BRACKET_SPACE.sub(r"\1", text)
            text = _SPACE_CLOSE_BRACKET.sub(r"\1", text)
        return text

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_unk: bool = False) -> list[str]:
        return [self.decode(row, skip_unk=skip_unk) for row in batch]

    def __repr__(self) -> str:
        return (
            f"Tokenizer(kind={self.kind!r}, lowercase={self.lowercase}, "
            f"vocab_size={self.vocab_size})"
        )
