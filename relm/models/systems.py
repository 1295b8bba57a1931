"""The systems on one LightningModule (which system is what: `relm.models.system_table`); a batch is a list of
`relm.bench.records.Item`s, each with its `task` ("response" or "ser")."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from relm.config import Preset
from relm.data.schema import LABELS
from relm.errors import RelmError
from relm.models.adapter import SubsamplingAdapter
from relm.models.blsp_emo import SpeechInit, check_same_llm, load_into
from relm.models.checkpoints import read_checkpoint_identity
from relm.models.compiling import CompiledLayers
from relm.models.inputs import build_inputs
from relm.models.llm import Batch, HFModel, next_token_loss, stop_ids, target_end_ids
from relm.models.lora import add_lora, make_lean, restrict_lora_to_speech
from relm.models.prompts import task_prompts
from relm.models.schedule import warmup_decay
from relm.models.system_table import get_system

if TYPE_CHECKING:
    from transformers import Cache, DynamicCache


class SystemLitModule(L.LightningModule):
    def __init__(
        self,
        system: str,
        preset: Preset,
        llm: HFModel,
        tokenizer,
        speech_dim: int,
        emotion_dim: int,
        total_steps: int = 1000,
        init: SpeechInit | None = None,
        classes: tuple[str, ...] = LABELS,  # the corpus's: the SER prompt lists them
    ):
        super().__init__()
        self.spec = get_system(system)
        self.preset, self.tokenizer = preset, tokenizer
        self.use_emotion = self.spec.emotion_input
        self.use_avd = self.spec.avd_loss
        self.total_steps = total_steps
        self.weights = dict(preset.train.loss_weights)
        if not self.use_avd:
            self.weights["avd"] = 0.0
        init = init if self.spec.speech else None  # text systems start from the LLM alone
        if self.spec.speech and not self.spec.trains and init is None:
            raise RelmError(
                f"{system} is a released speech-LLM evaluated as is: it needs a preset with speech_init "
                "(paper, paper-tiny)"
            )
        if init is not None:
            check_same_llm(init, llm, preset.llm.model)
        with_lora = self.spec.trains or init is not None
        self.llm = add_lora(llm, preset.lora) if with_lora else llm
        audio_lora = with_lora and self.spec.speech and preset.lora.scope == "audio"
        lean = with_lora and preset.train.lean_lora
        self.position_mask = restrict_lora_to_speech(self.llm, lean) if audio_lora else None
        if lean:
            make_lean(self.llm, self.position_mask)
        compiled = self.spec.trains and preset.train.compile_layers
        self.compiled = CompiledLayers(self.llm) if compiled else None
        d: int = self.llm.config.hidden_size
        if self.spec.speech:
            in_dim = speech_dim + (emotion_dim if self.use_emotion else 0)
            self.adapter = SubsamplingAdapter(in_dim, d, preset.adapter)
            self.ser_head = nn.Linear(d, len(LABELS), bias=False)
            if self.use_avd:
                self.avd_head = nn.Linear(d, 3, bias=False)
        self.prompts = task_prompts(tokenizer, preset.prompts, self.spec.speech, classes)
        self.target_end = target_end_ids(tokenizer, preset.train.target_end)  # closes a complete training target
        self.stop = stop_ids(tokenizer, preset.generate.stop)  # tokens that end an answer
        self.loaded_from_init: list[str] = load_into(self, init) if init is not None else []
        if self.spec.trains:
            self.llm.train()
            for head in preset.train.freeze:  # its loss still reaches the adapter through it
                if getattr(self, head, None) is not None:
                    getattr(self, head).requires_grad_(False)
        else:
            self.requires_grad_(False)  # zero-shot: nothing is trained, the released weights included
        self.target_logits_only = True  # False: the LLM's own labels= loss (benchmarks/perf.py compares the two)
        self._prefix_kv: dict = {}  # (task, autocast dtype) -> the prompt prefix's KV cache (see `generate`)
        self.identity = {
            "system": system,
            "preset": preset.name,
            "speech_dim": speech_dim,
            "emotion_dim": emotion_dim,
        } | ({"speech_init": init.identity} if init is not None else {})

    # ---- inputs ---------------------------------------------------------------------------
    def speech_tokens(self, items: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Adapter output (B, T', d) and its lengths (on the host), from Whisper frames [+ emotion embedding]."""
        lengths = torch.tensor([len(it["frames"]) for it in items])
        frames = nn.utils.rnn.pad_sequence(
            [it["frames"].to(self.device, torch.float32) for it in items], batch_first=True
        )
        if self.use_emotion:
            emo = torch.stack([it["emotion"].to(self.device, torch.float32) for it in items])
            frames = torch.cat([frames, emo[:, None, :].expand(-1, frames.shape[1], -1)], dim=-1)
        return self.adapter(frames, lengths)

    def build(self, items: Batch, with_target: bool, left_pad: bool) -> dict:
        """The batch's LLM inputs (`relm.models.inputs.build_inputs`)."""
        return build_inputs(self, items, with_target, left_pad, self.preset.train.pad_to_multiple)

    # ---- losses ---------------------------------------------------------------------------
    def losses(self, items: Batch) -> dict[str, torch.Tensor]:
        b = self.build(items, with_target=True, left_pad=False)
        if self.position_mask is not None:
            self.position_mask.mask = b["speech_mask"]
        response_ce = next_token_loss(self.llm, b, self.target_logits_only, self.preset.train.loss_group_size)
        losses = {"response_ce": response_ce}
        total = self.weights["response"] * response_ce
        if self.spec.speech:
            mask = torch.arange(b["speech_tokens"].shape[1], device=self.device)[None] < b["speech_len"][:, None]
            pooled = (b["speech_tokens"] * mask.unsqueeze(-1)).sum(1) / b["speech_len"][:, None]
            gold = torch.tensor([it["label"] for it in items], device=self.device)
            losses["ser_ce"] = nn.functional.cross_entropy(self.ser_head(pooled.float()), gold)
            total = total + self.weights["ser"] * losses["ser_ce"]
            if self.use_avd:
                avd = torch.stack([it["avd"].to(self.device, torch.float32) for it in items])
                losses["avd_mse"] = nn.functional.mse_loss(self.avd_head(pooled.float()), avd)
                total = total + self.weights["avd"] * losses["avd_mse"]
        losses["loss"] = total
        return losses

    def training_step(self, items, batch_idx):
        losses = self.losses(items)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=len(items), prog_bar=True)
        return losses["loss"]

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        t = self.preset.train
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            functools.partial(warmup_decay, warmup_steps=t.warmup_steps, total_steps=self.total_steps, warmup=t.warmup),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- inference ------------------------------------------------------------------------
    def train(self, mode: bool = True):
        if mode:
            self._prefix_kv.clear()  # the weights may change: cached prompt prefixes are stale
        compiled: CompiledLayers | None = getattr(self, "compiled", None)  # None also while __init__ runs
        if compiled is not None:
            compiled.use(mode)
        return super().train(mode)

    def prefix_kv(self, task: str, embeds: torch.Tensor) -> DynamicCache:
        """The keys and values of a prompt's shared prefix (`embeds`, 1 x P x d), computed once per prompt while
        the module is in eval mode, and per autocast dtype (it changes the cached values)."""
        on = torch.is_autocast_enabled(self.device.type)
        key = (task, torch.get_autocast_dtype(self.device.type) if on else None)
        if key not in self._prefix_kv:
            if self.position_mask is not None:
                self.position_mask.mask = None  # no speech in the prefix: LoRA off there (scope audio)
            self._prefix_kv[key] = self.llm(inputs_embeds=embeds, use_cache=True).cache
        return self._prefix_kv[key]

    def decode_cache(self, task: str, b: dict, shared: int, max_new_tokens: int) -> Cache | None:
        """The cache decoding starts from: the shared prefix's keys and values repeated for every row, in a
        DynamicCache, or (`generate.static_cache`) copied into a preallocated StaticCache for the whole answer."""
        rows, length = b["inputs_embeds"].shape[:2]
        prefix = self.prefix_kv(task, b["inputs_embeds"][:1, :shared]) if shared else None
        if not self.preset.generate.static_cache:
            if prefix is None:
                return None
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(rows)
            return cache
        from transformers import StaticCache

        static = StaticCache(config=self.llm.config, max_cache_len=length + max_new_tokens)
        if prefix is not None:
            for layer, cached in zip(static.layers, prefix.layers):
                keys, values = cached.keys, cached.values  # type: ignore[union-attr]  # a DynamicLayer's
                layer.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))  # type: ignore[union-attr]
        return static

    @torch.no_grad()
    def generate(self, items: Batch, task: str, max_new_tokens: int, reuse_prefix: bool = True) -> list[str]:
        """Greedy answers; the prompt's shared prefix is run once and its cache reused (`reuse_prefix`)."""
        self.eval()
        task = "response_eval" if task == "response" else task  # the test-time response prompt
        items = [dict(it, task=task) for it in items]
        b = self.build(items, with_target=False, left_pad=True)
        shared = b["shared_prefix"] if reuse_prefix else 0
        cache = self.decode_cache(task, b, shared, max_new_tokens)
        kwargs = {"cache": cache} if cache is not None else {}
        if self.position_mask is not None:
            self.position_mask.mask = b["speech_mask"][:, shared:]  # the positions the prefill runs
        out = self.llm.generate(
            inputs_embeds=b["inputs_embeds"],
            attention_mask=b["attention_mask"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop,
            **kwargs,
        )
        if self.position_mask is not None:
            self.position_mask.mask = None
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    @torch.no_grad()
    def head_predictions(self, items: Batch) -> tuple[list[str], list[list[float]] | None]:
        """SER head labels and A/V/D head outputs (speech systems)."""
        if not self.spec.speech:
            return [], None
        self.eval()
        speech, lengths = self.speech_tokens(items)
        lengths = lengths.to(self.device)
        mask = torch.arange(speech.shape[1], device=self.device)[None] < lengths[:, None]
        pooled = ((speech * mask.unsqueeze(-1)).sum(1) / lengths[:, None]).float()
        labels = [LABELS[i] for i in self.ser_head(pooled).argmax(-1).tolist()]
        avd = self.avd_head(pooled).tolist() if self.use_avd else None
        return labels, avd

    # ---- checkpoints: trained parts only ----------------------------------------------------
    def trained_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}

    def save_trained(self, path) -> None:
        save_file(
            self.trained_state(),
            str(path),
            metadata={"identity": json.dumps(self.identity), "preset_hash": self.preset.hash()},
        )

    def load_trained(self, path) -> None:
        """Load a run's trained parts; a missing, damaged or foreign checkpoint is one error naming it."""
        read_checkpoint_identity(Path(path), self.identity)
        state = load_file(str(path))
        own = dict(self.named_parameters())
        bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
        if bad:
            raise RelmError(f"{path}: checkpoint does not fit this model ({bad[:3]})")
        with torch.no_grad():
            for k, v in state.items():
                own[k].copy_(v)
