"""Models: tiny Qwen2/OLMo2 causal LMs with a byte-level BPE trained on the run's corpus, and
loading any Hugging Face causal LM (a run's checkpoint id, a local directory or a hub id)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Olmo2Config,
    Olmo2ForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from polyfact.errors import PolyFactError

EOS = "<|endoftext|>"
PAD = "<|pad|>"
FAMILIES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "olmo2": (Olmo2Config, Olmo2ForCausalLM)}


@dataclass
class TinyModelConfig:
    """Shape of a tiny model of one of the study's two families."""

    family: str = "qwen2"
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    vocab_size: int = 4096
    max_position_embeddings: int = 512

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise PolyFactError(f"unknown model family {self.family!r}; use one of: {', '.join(FAMILIES)}")
        if self.hidden_size % self.num_heads:
            raise PolyFactError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style pre-tokenization) trained on ``texts``, wrapped for transformers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None,
                                   clean_up_tokenization_spaces=False)


def make_tiny_model(cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> PreTrainedModel:
    """A randomly initialized model of ``cfg.family`` sized for ``tokenizer``."""
    config_cls, model_cls = FAMILIES[cfg.family]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def resolve_checkpoint(path_or_id: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> str:
    """A run's checkpoint id (``base``) → ``<run>/checkpoints/base``; a directory → itself;
    anything else is passed on as a Hugging Face hub id."""
    s = str(path_or_id)
    if run_dir is not None and (Path(run_dir) / "checkpoints" / s / "config.json").exists():
        return str(Path(run_dir) / "checkpoints" / s)
    pointer = Path(run_dir) / "checkpoints" / s / "manifest.json" if run_dir is not None else None
    if pointer is not None and pointer.exists():  # a run's base that is an outside model (paper preset)
        import json

        source = json.loads(pointer.read_text(encoding="utf-8")).get("source")
        if source:
            return str(source)
    if Path(s).is_dir():
        if not (Path(s) / "config.json").exists():
            raise PolyFactError(f"{s} has no config.json; it is not a saved model (save_pretrained) directory")
        return s
    if run_dir is not None and "/" not in s:
        raise PolyFactError(
            f"no checkpoint {s!r} in {Path(run_dir) / 'checkpoints'}; train it first "
            f"(polyfact train ... --id {s}) or pass a model directory"
        )
    return s


def load_checkpoint(
    path_or_id: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    *,
    dtype: str | torch.dtype = "auto",
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Load a causal LM and its tokenizer: a run checkpoint id, a local directory, or a hub id
    such as ``Qwen/Qwen2.5-7B`` (bf16 and ``device_map="auto"`` on a GPU machine).

    Weights load through safetensors; remote code runs only when ``trust_remote_code`` is set.
    """
    where = resolve_checkpoint(path_or_id, run_dir)
    if dtype == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    try:
        tokenizer = _load_tokenizer(where, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except OSError as err:
        raise PolyFactError(f"cannot load model {where!r}: {str(err).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise PolyFactError(
            f"tokenizer of {where} has {len(tokenizer)} tokens but the model embeds "
            f"{model.get_input_embeddings().num_embeddings}: tokenizer/model mismatch; save them together"
        )
    model.eval()
    return model, tokenizer


def _load_tokenizer(where: str, trust_remote_code: bool) -> PreTrainedTokenizerFast:
    """A tokenizer saved from a plain ``PreTrainedTokenizerFast`` (our toy tokenizers) is reloaded
    as one, so ``tokenizer.json`` is used exactly; ``AutoTokenizer`` would pick the model family's
    tokenizer class (e.g. ``Qwen2Tokenizer``), which rebuilds its own pre-tokenization."""
    cfg_path = Path(where) / "tokenizer_config.json"
    if cfg_path.exists():
        import json

        cls = json.loads(cfg_path.read_text(encoding="utf-8")).get("tokenizer_class")
        if cls in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(where)
    return AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)


def model_family(model: PreTrainedModel) -> str:
    """The ``model_type`` of a transformers model (``qwen2``, ``olmo2``, ``llama``…)."""
    return str(getattr(model.config, "model_type", "unknown"))

