"""Speech to text (many-to-many, CTC): raw 16 kHz waveform → characters.

Default data: synthetic speech generated in-process with espeak-ng (``espeakng-loader``):
digit strings, numbers (num2words) and short sentences in many voices, variants, rates and
pitches, with noise and speed perturbation; held-out texts and voice variants for val/test.
User data: an LJSpeech folder (``metadata.csv`` + ``wavs/``) or a CSV of ``path,transcript``.
"""


def __getattr__(name: str):
    if name == "TASK":
        from apps.speech_to_text.task import TASK

        return TASK
    raise AttributeError(name)
