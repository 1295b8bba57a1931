"""Presets (smoke / cpu / paper, or a user's YAML) as dataclasses; the docstring under each field is its help.

One code path serves every size: a preset only changes model names, widths, prompts and
hyperparameters. Loading and checking preset files: `relm.presets`; `relm bench --help-preset`
prints every field with the docstring written under it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from relm.keys import content_key


@dataclass
class SpeechEncoderCfg:
    model: str = "whisper-tiny.en"
    """Model registry name (`relm ls models`); a `random` model is built from `tiny`."""
    pad_to_30s: bool = False
    """Run Whisper's native 30 s window (paper) instead of only the utterance's own frames."""
    tiny: dict = field(default_factory=dict)
    """WhisperConfig arguments for a random model."""


@dataclass
class EmotionEncoderCfg:
    kind: str = "compact"
    """Emotion encoder kind (`relm ls encoders`): compact (trained in stage 0) or w2v2 (audeering, frozen)."""
    model: str = ""
    """Model registry name, for kinds that load pretrained weights (w2v2)."""
    dim: int = 128
    """Embedding width of the compact encoder."""
    epochs: int = 20
    """Stage-0 training epochs of the compact encoder."""
    lr: float = 2e-3
    """Stage-0 learning rate."""
    pseudo_avd: str = "category-table"
    """A/V/D targets for corpora without annotations: category-table or encoder (its own predictions)."""
    pretrain_corpus: str = ""
    """Dataset the stage-0 encoder trains on, disjoint from the benchmark in speakers and sentences;
    empty: a frozen random encoder."""
    pretrain_max_utterances: int = 0
    """>0: a stable subset of the pre-training corpus's train split (smoke)."""
    avd_targets: str = "annotations"
    """A/V/D regression targets on corpora that have A/V/D annotations: annotations, or encoder (its own
    predictions, as on corpora without them when pseudo_avd is encoder)."""


@dataclass
class LLMCfg:
    model: str = "smollm2-135m-instruct"
    """Model registry name; a `random` model is a small Qwen2 built from `tiny`."""
    dtype: str = "float32"
    """Weight dtype (torch name)."""
    trust_remote_code: bool = False
    """Allow the checkpoint's own Python code (never on by default)."""
    tiny: dict = field(default_factory=dict)
    """Qwen2Config arguments for a random model."""


@dataclass
class LoraCfg:
    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA alpha (scale = alpha / r)."""
    dropout: float = 0.05
    """LoRA dropout."""
    scope: str = "all"
    """all positions, or audio: LoRA active only at speech positions (BLSP's partial LoRA)."""
    target_modules: list[str] | None = None
    """Module names to adapt; None picks them by architecture."""
    shared_qkv_a: bool = False
    """One `lora_A` (one Parameter, one dropout mask) for q, k and v, as BLSP's LoRA on Qwen v1's fused `c_attn`
    has; False: three independent ones."""


@dataclass
class AdapterCfg:
    inner_dim: int = 512
    """Width of the residual bottleneck."""
    kernel: int = 5
    """Conv1d kernel size."""
    stride: int = 2
    """Conv1d stride (each conv halves the frame rate)."""
    n_conv: int = 3
    """Number of Conv1d + GLU blocks."""


@dataclass
class TeacherCfg:
    model: str = "smollm2-135m-instruct"
    """Model registry name of the step-1 teacher (frozen text LLM)."""
    prompt: str = "fewshot"
    """Prompt style: paper (continuation), fewshot (worked examples) or template (a fixed reply per emotion)."""
    system: str = ""
    """System message of the teacher's chat prompt."""
    user: str = ""
    """User message; {emotion} and {text} are filled in."""
    examples: list[list[str]] = field(default_factory=list)
    """Few-shot examples, each [emotion, what was said, the reply]."""
    templates: dict[str, str] = field(default_factory=dict)
    """prompt=template: the fixed reply per emotion (tiny random models get a learnable target)."""
    openers: dict[str, str] = field(default_factory=dict)
    """Per emotion, the words the teacher's reply starts with (the model writes the rest): a reaction that
    names the emotion it was given, which a small teacher does not do reliably on its own. Empty: none."""
    max_new_tokens: int = 48
    """Greedy decoding length of a teacher reply."""
    repetition_penalty: float = 1.2
    """Repetition penalty of the teacher's decoding (decoding: relm)."""
    batch_size: int = 16
    """Teacher generation batch size."""
    decoding: str = "relm"
    """release: the model folder's generation_config.json with only the release's overrides (greedy,
    max_new_tokens, at least 1 new token); relm: greedy with this section's repetition_penalty, the file ignored."""
    clean: str = "relm"
    """release: drop the five noise patterns, keep the reply as generated; relm: also strip quotes, keep the first
    line and cut a reply that hit the token limit back to its last sentence end."""


@dataclass
class TrainCfg:
    lr: float = 2e-4
    """Peak learning rate (AdamW, linear warm-up then linear decay)."""
    weight_decay: float = 0.05
    """AdamW weight decay."""
    warmup_steps: int = 20
    """Optimizer steps of linear warm-up."""
    batch_size: int = 8
    """Items per micro-batch over all processes (the global batch; each process takes batch_size / world size)."""
    accumulate: int = 1
    """Gradient accumulation (micro-batches per optimizer step)."""
    epochs: int = 1
    """Passes over the training items, when max_steps is -1 (the paper's recipe counts epochs)."""
    max_steps: int = -1
    """The training budget in optimizer steps, whatever the corpus size; -1 runs `epochs` passes."""
    max_passes: float = 20
    """Warn when a run sees its training items more often than this (or less than once)."""
    precision: str = "32-true"
    """Lightning precision (32-true, bf16-mixed, ...), or auto: bf16 only where this machine runs it natively
    (measured once per machine); results record the choice and why."""
    strategy: str = "auto"
    """Lightning strategy. With more than one process, ddp (auto and ddp_spawn mean the same): the sweep runs
    once, in this process, and only training and the trained system's test answers run in the spawned workers
    (gloo on CPU, NCCL on GPUs). fsdp and deepspeed need every process to run the whole sweep (torchrun/srun):
    not supported yet, said before any work."""
    devices: Any = 1
    """Lightning devices per node: an int, a list of device ids, or auto (every visible GPU; 1 on a CPU)."""
    num_nodes: int = 1
    """Machines; world size = devices x num_nodes. More than one needs externally launched processes (srun):
    not supported yet."""
    warmup: str = "linear"
    """Warm-up curve: linear ((step + 1) / warmup_steps), or log (DeepSpeed's WarmupDecayLR default,
    log(step + 1) / log(warmup_steps)); both decay linearly to 0 afterwards."""
    select: str = "last"
    """Which weights answer the test split: last (the final weights, as released) or best (the lowest val/loss
    among the validations). Before this switch, relm meant to keep the best but on a CPU kept the last: its
    snapshot was a view of the live CPU parameters, so every CPU result so far is `last`."""
    val_per_epoch: int = 2
    """Validations per pass over the training items, evenly spaced in optimizer steps (the release: 1)."""
    val_every_steps: int = 0
    """>0: validate every this many optimizer steps instead of val_per_epoch."""
    freeze: list[str] = field(default_factory=list)
    """Heads kept frozen although the system has them (ser_head, avd_head): no gradient reaches their weights,
    while their losses still train the adapter through them (the release freezes ser_head)."""
    target_end: str = "im_end"
    """What closes a complete training target: im_end (`<|im_end|>`), or release (`<|im_end|>\\n<|endoftext|>`)."""
    grad_clip: float = 1.0
    """Gradient norm clip."""
    val_fraction: float = 0.1
    """Share of train held out for selection, only when the corpus has no val split."""
    length_buckets: int = 0
    """>0: micro-batches of similar length (less padding): each run of this many batches' worth of shuffled items
    is sorted by length and cut into batches, which are then shuffled (one process only). 0: plain shuffle."""
    max_val_items: int = 0
    """>0: a seeded subset of the val items for checkpoint selection (CPU time)."""
    ser_prompt_fraction: float = 0.0
    """Share of training samples that ask the SER prompt (target: the gold label word)."""
    loss_weights: dict = field(default_factory=lambda: {"response": 1.0, "ser": 1.0, "avd": 1.0})
    """Weights of the response CE, SER CE and A/V/D MSE losses."""
    loss_group_size: int = 0
    """>0: the response loss is the mean over consecutive groups of this many samples of each group's token mean
    (batch 16 in groups of 2 is the objective of batch 2 x accumulate 8, in one forward); 0: the token mean."""
    lean_lora: bool = False
    """LoRA with fewer kernels, the same numbers: the speech mask on the rank-r product, no input casts under
    autocast, one q/k/v product where lora_A is shared (`relm.models.lora.LeanLoraLinear`)."""
    compile_layers: bool = False
    """torch.compile each LLM decoder layer for training (one compiled layer serves all; fused kernels)."""
    pad_to_multiple: int = 0
    """>0: training batches padded to a multiple of this many positions (fewer distinct shapes for compiled
    layers and tensor cores; padding carries no loss and no attention)."""


@dataclass
class GenerateCfg:
    max_new_tokens: int = 48
    """Greedy decoding length of a response."""
    ser_max_new_tokens: int = 8
    """Greedy decoding length of an SER answer."""
    batch_size: int = 16
    """Generation batch size."""
    stop: str = "im_end"
    """Tokens that end an answer: im_end, or release (`<|im_end|>`, `<|im_start|>` or `<|endoftext|>`)."""
    static_cache: bool = False
    """Decode into a preallocated KV cache (the prompt prefix copied in); on CUDA transformers then compiles the
    decoding step with CUDA graphs."""


@dataclass
class PromptCfg:
    system: str = ""
    """System message of the response prompt (the paper's empathy prompt)."""
    instruction: str = ""
    """Instruction before the speech (or transcript) in the response prompt."""
    ser_system: str = ""
    """System message of the SER prompt."""
    ser_instruction: str = ""
    """SER instruction before the speech, listing the classes."""
    ser_instruction_text: str = ""
    """SER instruction before the transcript, for text-only systems."""
    eval_instruction: str | None = None
    """Instruction of the response prompt when answering the test split; None: the training instruction
    (the release evaluates with an empty one)."""


@dataclass
class RuntimeCfg:
    device: str = "auto"
    """auto (CUDA when visible, else CPU), cpu, or cuda[:N]; cuda never falls back to the CPU."""


@dataclass
class Preset:
    name: str = "cpu"
    """Preset name (recorded in results and checkpoints)."""
    speech_encoder: SpeechEncoderCfg = field(default_factory=SpeechEncoderCfg)
    emotion_encoder: EmotionEncoderCfg = field(default_factory=EmotionEncoderCfg)
    llm: LLMCfg = field(default_factory=LLMCfg)
    lora: LoraCfg = field(default_factory=LoraCfg)
    adapter: AdapterCfg = field(default_factory=AdapterCfg)
    teacher: TeacherCfg = field(default_factory=TeacherCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    generate: GenerateCfg = field(default_factory=GenerateCfg)
    prompts: PromptCfg = field(default_factory=PromptCfg)
    runtime: RuntimeCfg = field(default_factory=RuntimeCfg)
    speech_init: str = ""
    """A released speech-LLM the speech systems start from (BLSP-Emo layout, `relm ls models`): its LoRA, its
    adapter (for an input of Whisper alone) and its emotion head; `blsp-emo` evaluates it as is. Empty: none."""
    scorer: str = ""
    """The empathy scorer kind (`relm ls scorers`), trained when missing, so fresh and warm machines score alike."""
    agreement_scorer: str = ""
    """A second scorer kind that rescores the test replies: kappa per mechanism and direction flips (empty: none)."""
    scorer_seeds: int = 1
    """Scorers of the preset's kind, trained with seeds 0..N-1, that score the replies: each empathy comparison is
    marked robust only when it holds under every one (and the agreement scorer); 1: the sweep's scorer alone."""
    scorer_params: dict = field(default_factory=dict)
    """Parameters of the scorer kind (its constructor's names, e.g. {encoder: roberta-base} for `epitome`); they are
    part of the scorer's identity and apply to its seed scorers. Empty: the kind's defaults."""
    scorer_cv_folds: int = 0
    """Cross-validate the preset's scorer kind with this many folds grouped by seeker (each fold cached) and record
    held-out macro-F1 and accuracy per mechanism (mean and sd over folds) in results.json; 0: not done."""
    threads: int = 0
    """Torch CPU threads; 0 = all cores. 1 makes CPU float sums bit-reproducible (smoke, CI)."""
    max_utterances: dict = field(default_factory=dict)
    """Per-split cap, e.g. {train: 64} (smoke)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """Content key of the whole preset, or of the named sections (stage cache keys). A field added after
        presets were hashed is left out while it keeps its default, which behaves as before it existed: cache
        entries and baselines made before it stay valid."""
        d = self.to_dict()
        from relm.config_history import ADDED_LATER

        for section, name in ADDED_LATER:  # section "": a top-level field
            where, owner = (d[section], type(getattr(self, section))) if section else (d, type(self))
            if where[name] == field_default(owner, name):
                del where[name]
        return content_key({s: d[s] for s in sections} if sections else d)


def field_default(cls: type, name: str) -> Any:
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default
