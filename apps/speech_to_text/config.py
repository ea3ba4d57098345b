"""Default configuration of the speech_to_text app (override with YAML or ``--set k=v``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class SpeechToTextConfig:
    # --- data (synthetic speech from espeak-ng unless --data names user data) ---
    seed: int = 1234
    train_size: int = 6000  # synthetic training utterances (cached as .npz)
    val_size: int = 200  # held-out: unseen texts and unseen voice variants
    test_size: int = 300
    noise_probability: float = 0.6  # share of training batches' rows that get noise
    min_snr_db: float = 8.0
    max_snr_db: float = 35.0
    speed_perturbation: float = 0.1  # resample speed by a factor in [1 - x, 1 + x]
    min_rate_wpm: int = 120  # espeak speaking rates
    max_rate_wpm: int = 230
    # Room/channel augmentation: off, as it cost held-out WER for no real-speech gain (README).
    reverb_probability: float = 0.0  # convolve with a synthetic exponentially decaying noise RIR
    min_rt60: float = 0.1  # seconds
    max_rt60: float = 0.8
    eq_probability: float = 0.0  # random high-pass / low-pass (telephone-like) / spectral tilt
    # Engines mixed into the synthetic corpus (apps/speech_to_text/engines.py); those not
    # installed are skipped with a warning. Weights: each engine's share of the utterances.
    engines: list[str] = field(
        default_factory=lambda: ["espeak", "mbrola", "flite", "festival"])
    engine_weights: list[float] = field(default_factory=lambda: [0.4, 0.2, 0.2, 0.2])
    # Whole voices ("engine:name") kept out of training; half of val/test rows use them.
    held_out_voices: list[str] = field(default_factory=lambda: ["mbrola:us3", "flite:rms"])
    synth_workers: int = 2  # parallel TTS subprocesses while generating
    max_pad_seconds: float = 0.6  # leading/trailing silence (filled by noise) up to this
    # More channels (apps/speech_to_text/channel.py), per training row (val/test baked in);
    # off: at a 15-minute budget they cost accuracy on real speech too (README).
    noise_kinds: list[str] = field(default_factory=lambda: ["white", "brown"])
    babble_probability: float = 0.0  # noise made of other utterances of the batch
    hum_probability: float = 0.0  # 50/60 Hz mains hum at 10-40 dB below the speech
    telephone_probability: float = 0.0  # 8 kHz round trip (half of them μ-law coded)
    dc_offset_probability: float = 0.0
    clip_probability: float = 0.0  # overdriven input, hard-clipped
    max_seconds: float = 8.0  # longer training utterances are dropped
    user_val_fraction: float = 0.05  # user data share of validation, and of test

    # --- frontend (waveform at sample_rate → log-mel) ---
    sample_rate: int = 16000
    frame_length: int = 400  # 25 ms
    frame_step: int = 160  # 10 ms
    fft_length: int = 512
    num_mel_bins: int = 64
    lower_edge_hertz: float = 60.0
    upper_edge_hertz: float = 7600.0
    feature_cmvn: bool = False  # per-utterance mean/variance normalisation over valid frames
    freq_mask_count: int = 2
    freq_mask_width: int = 8
    time_mask_count: int = 2
    time_mask_width: int = 12

    # --- model ---
    conv_filters: list[int] = field(default_factory=lambda: [128, 128])
    conv_kernel_sizes: list[int] = field(default_factory=lambda: [5, 3])
    conv_strides: list[int] = field(default_factory=lambda: [3, 1])
    rnn_kind: Literal["rnn", "lstm", "gru"] = "gru"
    units: int = 128  # 128: every export format + held-out sample fit in 15 MB
    num_layers: int = 2
    bidirectional: bool = True
    # Streaming (#19): causal log-mel framing and causal convolutions (left padding only) and a
    # unidirectional recurrent block (overrides `bidirectional`), so the export also holds a
    # step graph that transcribes `stream_chunk_ms` of audio at a time with cached context.
    streaming: bool = False
    stream_chunk_ms: int = 160  # rounded up to whole subsampled frames (conv strides product)
    dropout_rate: float = 0.1

    # --- training ---
    batch_size: int = 32
    epochs: int = 24  # ~16 min on an idle 2-core CPU (~40 s per epoch measured when idle-ish)
    steps_per_epoch: int = 0  # 0: one pass over the training set
    learning_rate: float = 2e-3
    clipnorm: float = 5.0
    patience: int = 6
    max_train_minutes: float = 0.0  # stop after the epoch that passes this (0: no limit)
    eval_wer_every_epoch: bool = True  # WER-vs-time curve (wer_curve.csv)

    # --- decoding / export ---
    beam_width: int = 1  # 1: greedy; >1: CTC prefix beam search
    max_audio_seconds: float = 20.0  # longer audio is cut into chunks of at most this
