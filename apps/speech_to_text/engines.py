"""Speech synthesis engines for the synthetic corpus: espeak-ng's formant voices (in-process,
``espeakng-loader``), MBROLA diphone voices driven by the ``espeak-ng`` program (``mb-us1``
…), Flite's voices (the ``flite`` program) and Festival's voices (``festival``, batched per
call). Each is optional but espeak: :func:`available_engines` leaves out the ones that are not
installed, with one warning line each that says what to install.

A voice is ``engine:name`` (``espeak:en-us+f3``, ``mbrola:us1``, ``flite:slt``,
``festival:cmu_us_slt_arctic_hts``); that key is what a split records per utterance, what
evaluate reports accuracy by, and what ``held_out_voices`` names.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError

ENGINES = ("espeak", "mbrola", "flite", "festival")
INSTALL_ADVICE = {
    "espeak": "pip install espeakng-loader==0.2.4",
    "mbrola": "apt-get install espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 "
              "(Debian contrib/non-free)",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
}
MBROLA_ROOT = Path("/usr/share/mbrola")
MBROLA_ENGLISH = ("us1", "us2", "us3", "en1")  # en1 is British; us1 female, others male
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")  # awb_time only speaks the time
FESTIVAL_ROOT = Path("/usr/share/festival/voices")


@dataclass(frozen=True)
class Request:
    """One utterance to speak: ``rate`` scales speaking speed (1.0: the voice's own; > 1
    faster), ``pitch`` shifts the voice's mean pitch by this factor (1.0: its own)."""

    text: str
    voice: str  # "engine:name"
    rate: float = 1.0
    pitch: float = 1.0
    pitch_range: int = 50  # espeak only (0-100)


def engine_of(voice: str) -> str:
    return voice.split(":", 1)[0]


def _read_wav_bytes(data: bytes, source: str) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile says why
        raise RuntimeError(f"{source} gave no readable wav ({len(data)} bytes): {error}") from None
    return wave.mean(axis=1).astype(np.float32), int(rate)


def _run(command: list[str], source: str, stdin: str | None = None, timeout: float = 120.0
         ) -> bytes:
    result = subprocess.run(command, input=None if stdin is None else stdin.encode(),
                            capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{source} failed (exit {result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()[:300]}")
    return result.stdout


class Engine:
    """An engine: its voices, and ``synthesize_many`` (float32 waves and their rates)."""

    name = ""

    def missing(self) -> str | None:
        """Why the engine cannot run here (None: it can)."""
        raise NotImplementedError

    def voices(self) -> list[str]:
        raise NotImplementedError

    def synthesize_many(self, requests: Sequence[Request], workers: int = 2
                        ) -> list[tuple[np.ndarray, int]]:
        if workers <= 1 or len(requests) <= 1:
            return [self.synthesize(request) for request in requests]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(self.synthesize, requests))

    def synthesize(self, request: Request) -> tuple[np.ndarray, int]:
        raise NotImplementedError


class EspeakEngine(Engine):
    """espeak-ng formant voices in-process: ``espeak:<accent>+<variant>`` (variant optional)."""

    name = "espeak"
    ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc",
               "en-gb-x-gbclan", "en-gb-x-gbcwmd")

    def missing(self) -> str | None:
        try:
            import espeakng_loader  # noqa: F401
        except ImportError:
            return "the espeakng-loader package is not installed"
        return None

    def variants(self) -> list[str]:
        from rnnkit.data.audio import EspeakSynthesizer

        return EspeakSynthesizer.variants()

    def voices(self) -> list[str]:
        return [f"espeak:{accent}" for accent in self.ACCENTS] + [
            f"espeak:{accent}+{variant}" for accent in self.ACCENTS for variant in self.variants()]

    def synthesize_many(self, requests, workers=2):
        return [self.synthesize(request) for request in requests]  # one library, one lock

    def synthesize(self, request: Request) -> tuple[np.ndarray, int]:
        from rnnkit.data.audio import EspeakSynthesizer

        synth = EspeakSynthesizer()
        name = request.voice.split(":", 1)[1]
        accent, _, variant = name.partition("+")
        wave = synth.synthesize(request.text, voice=accent, variant=variant or None,
                                rate=int(round(175 * request.rate)),
                                pitch=int(np.clip(round(50 * request.pitch), 0, 99)),
                                pitch_range=request.pitch_range)
        return wave.astype(np.float32) / 32768.0, synth.sample_rate


class MbrolaEngine(Engine):
    """MBROLA diphone voices (recorded human diphones) through the ``espeak-ng`` program."""

    name = "mbrola"

    def missing(self) -> str | None:
        if shutil.which("espeak-ng") is None:
            return "the espeak-ng program is not installed"
        if shutil.which("mbrola") is None:
            return "the mbrola program is not installed"
        if not self.voices():
            return f"no English MBROLA voice under {MBROLA_ROOT}"
        return None

    def voices(self) -> list[str]:
        return [f"mbrola:{name}" for name in MBROLA_ENGLISH
                if (MBROLA_ROOT / name / name).is_file()]

    def synthesize(self, request: Request) -> tuple[np.ndarray, int]:
        name = request.voice.split(":", 1)[1]
        data = _run(["espeak-ng", "-v", f"mb-{name}", "-s", str(int(round(165 * request.rate))),
                     "-p", str(int(np.clip(round(50 * request.pitch), 0, 99))),
                     "--stdout", request.text], f"espeak-ng -v mb-{name}")
        return _read_wav_bytes(data, f"espeak-ng -v mb-{name}")


class FliteEngine(Engine):
    name = "flite"

    def missing(self) -> str | None:
        return None if shutil.which("flite") else "the flite program is not installed"

    def voices(self) -> list[str]:
        try:
            listed = _run(["flite", "-lv"], "flite -lv").decode()
        except (OSError, RuntimeError):
            return []
        names = listed.split(":", 1)[-1].split()
        return [f"flite:{name}" for name in FLITE_VOICES if name in names]

    def synthesize(self, request: Request) -> tuple[np.ndarray, int]:
        name = request.voice.split(":", 1)[1]
        with tempfile.TemporaryDirectory(prefix="rnnkit-flite-") as folder:
            out = Path(folder) / "speech.wav"
            # int_f0_target_mean: the voices' mean pitch is ~100 Hz (male) to ~160 Hz (slt);
            # rms ignores it (keeps its own pitch)
            base = 160.0 if name == "slt" else 105.0
            _run(["flite", "-voice", name, "-t", request.text, "-o", str(out),
                  "--setf", f"duration_stretch={1.0 / request.rate:.3f}",
                  "--setf", f"int_f0_target_mean={base * request.pitch:.1f}"], f"flite -voice {name}")
            return _read_wav_bytes(out.read_bytes(), f"flite -voice {name}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalEngine(Engine):
    """Festival voices, many utterances per ``festival -b`` call (its start-up dominates)."""

    name = "festival"
    BATCH = 40

    def missing(self) -> str | None:
        if shutil.which("festival") is None:
            return "the festival program is not installed"
        if not self.voices():
            return f"no English Festival voice under {FESTIVAL_ROOT}"
        return None

    def voices(self) -> list[str]:
        found = []
        for language in ("english", "us"):
            folder = FESTIVAL_ROOT / language
            if folder.is_dir():
                found += [f"festival:{path.name}" for path in sorted(folder.iterdir())
                          if path.is_dir()]
        return found

    def synthesize(self, request: Request) -> tuple[np.ndarray, int]:
        return self._batch([request])[0]

    def synthesize_many(self, requests, workers=2):
        requests = list(requests)
        batches: list[list[Request]] = []
        by_voice: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_voice.setdefault(request.voice, []).append(index)
        order = []
        for indices in by_voice.values():
            for start in range(0, len(indices), self.BATCH):
                chunk = indices[start:start + self.BATCH]
                batches.append([requests[i] for i in chunk])
                order.append(chunk)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            results = list(pool.map(self._batch, batches))
        out: list[tuple[np.ndarray, int] | None] = [None] * len(requests)
        for chunk, waves in zip(order, results, strict=True):
            for index, wave in zip(chunk, waves, strict=True):
                out[index] = wave
        return out  # type: ignore[return-value]

    def _batch(self, requests: Sequence[Request]) -> list[tuple[np.ndarray, int]]:
        name = requests[0].voice.split(":", 1)[1]
        with tempfile.TemporaryDirectory(prefix="rnnkit-festival-") as folder:
            lines = [f"(voice_{name})"]
            for index, request in enumerate(requests):
                lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / request.rate:.3f})")
                if "hts" in name:  # HTS voices ignore Duration_Stretch: hts_engine's -r
                    lines.append(f"(set! hts_engine_params (append {name}::hts_engine_params "
                                 f"(list (list \"-r\" {request.rate:.3f}))))")
                else:  # diphone voices: linear-regression intonation targets
                    lines.append(f"(set! int_lr_params (append (list (list 'target_f0_mean "
                                 f"{105.0 * request.pitch:.1f})) int_lr_params))")
                lines.append(f"(utt.save.wave (utt.synth (Utterance Text "
                             f"{_scheme_string(request.text)})) "
                             f"{_scheme_string(str(Path(folder) / f'{index}.wav'))} 'riff)")
            script = Path(folder) / "speak.scm"
            script.write_text("\n".join(lines) + "\n")
            _run(["festival", "-b", str(script)], f"festival voice_{name}",
                 timeout=60.0 + 10.0 * len(requests))
            return [_read_wav_bytes((Path(folder) / f"{i}.wav").read_bytes(),
                                    f"festival voice_{name}") for i in range(len(requests))]


_ENGINE_CLASSES = {"espeak": EspeakEngine, "mbrola": MbrolaEngine, "flite": FliteEngine,
                   "festival": FestivalEngine}
_WARNED: set[str] = set()


def get_engine(name: str) -> Engine:
    if name not in _ENGINE_CLASSES:
        raise UserError(f"Unknown speech engine. Received: {name!r}; allowed: {', '.join(ENGINES)}")
    return _ENGINE_CLASSES[name]()


def check_engine(name: str) -> Engine:
    """The engine ``name``, or a UserError saying why it cannot run and what installs it."""
    engine = get_engine(name)
    why = engine.missing()
    if why is not None:
        raise UserError(f"Speech engine {name!r} cannot run: {why} ({INSTALL_ADVICE[name]})")
    return engine


def available_engines(names: Sequence[str], warn: bool = True) -> dict[str, Engine]:
    """The engines of ``names`` that can run here; the others are left out with one warning
    line each (stderr) naming what to install. espeak is required (the fallback)."""
    engines = {}
    for name in names:
        engine = get_engine(name)
        why = engine.missing()
        if why is None:
            engines[name] = engine
        elif name == "espeak":
            raise UserError(f"Synthetic speech needs espeak-ng: {why} ({INSTALL_ADVICE[name]})")
        elif warn and name not in _WARNED and not os.environ.get("RNNKIT_QUIET_ENGINES"):
            _WARNED.add(name)
            print(f"warning: speech engine {name!r} skipped: {why} ({INSTALL_ADVICE[name]})",
                  file=sys.stderr)
    return engines
