"""Audio I/O: soundfile to read, torchaudio to resample; validation with clear errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from relm.errors import RelmError

TARGET_SR = 16000


class AudioError(RelmError):
    """A file that cannot be used as speech; the message names the file and the problem."""


@dataclass(frozen=True)
class AudioBounds:
    min_seconds: float = 0.3
    max_seconds: float = 30.0
    silence_rms: float = 1e-4  # below about -80 dBFS


def probe(path: str | os.PathLike) -> float:
    """Duration in seconds from the header alone; AudioError if unreadable."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: empty audio (0 frames)")
    return info.frames / info.samplerate


def check_duration(path, seconds: float, bounds: AudioBounds) -> None:
    if seconds < bounds.min_seconds:
        raise AudioError(f"{path}: too short ({seconds:.2f} s < {bounds.min_seconds} s)")
    if seconds > bounds.max_seconds:
        raise AudioError(f"{path}: too long ({seconds:.1f} s > {bounds.max_seconds} s)")


def resample(wave: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    if sr == target_sr:
        return wave.astype(np.float32, copy=False)
    import torch
    import torchaudio

    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(wave, np.float32)), sr, target_sr)
    return out.numpy()


def load_audio(
    path: str | os.PathLike, target_sr: int = TARGET_SR, bounds: AudioBounds | None = AudioBounds()
) -> np.ndarray:
    """Read a file as mono float32 at `target_sr`; AudioError names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from None
    if wave.size == 0:
        raise AudioError(f"{path}: empty audio (0 frames)")
    wave = wave.mean(axis=1)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if bounds is not None:
        check_duration(path, len(wave) / sr, bounds)
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        if rms < bounds.silence_rms:
            raise AudioError(f"{path}: silent (RMS {rms:.2e})")
    return resample(wave, sr, target_sr)
