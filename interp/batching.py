"""From per-language text to model batches, and the loss on them: chunking to a sequence length,
padding (excluded by the attention mask), and the next-token cross-entropy over real tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from polyfact.core.errors import PolyFactError
from polyfact.interp.registry import BACKENDS

Texts = Mapping[str, Sequence[str] | Sequence[Sequence[int]]]


@dataclass
class CollectConfig:
    """Chunking, batching and the hook backend. ``max_tokens`` is a per-language budget; ``pack``
    concatenates a language's texts (EOS between them) into full ``seq_len`` chunks, otherwise
    each text is one (truncated, padded) sequence."""

    seq_len: int = 256
    batch_size: int = 8
    max_tokens: int | None = None
    pack: bool = True
    backend: str = "nnsight"
    progress: bool = True
    compile: bool = False  # fuse the per-layer reductions with torch.compile (GPU: ~1.03x bare forward)
    moments: bool = True  # also sum act and act² per neuron (means/variances); LAPE needs only counts
    separator: bool = True  # packed texts: an EOS between texts (the study's LAPE: none)
    special_tokens: bool = False  # tokenize with the tokenizer's special tokens (the study's LAHIS: yes)

    def __post_init__(self) -> None:
        BACKENDS.check(self.backend, "backend")
        if self.seq_len < 2 or self.batch_size < 1:
            raise PolyFactError("seq_len must be at least 2 and batch_size at least 1")


def pad_id(tokenizer) -> int:
    """The id used to pad batches: the pad token, else EOS, else 0 (padding is masked anyway)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id or 0)


def languages_with_text(texts: Texts, what: str = "statistics") -> list[str]:
    """Languages that have at least one text (a one-line error when none has)."""
    langs = [lang for lang, items in texts.items() if len(items)]
    if not langs:
        raise PolyFactError(f"no text for {what}; pass {{lang: [texts]}} with at least one text")
    return langs


CHARS_PER_TOKEN_CAP = 64  # a text is cut to this many characters per token still needed before tokenizing


def _token_ids(tokenizer, items: Sequence[str] | Sequence[Sequence[int]], need, special_tokens: bool):
    """Each item's token ids, tokenized one at a time and cut beforehand to what ``need()`` tokens
    can use, so a huge text never meets the tokenizer whole."""
    for item in items:
        if isinstance(item, str):
            limit = need()
            if limit != float("inf"):
                item = item[: int(limit) * CHARS_PER_TOKEN_CAP + 1024]
            yield tokenizer(item, add_special_tokens=special_tokens)["input_ids"]
        else:
            yield list(item)


def token_chunks(tokenizer, items: Sequence[str] | Sequence[Sequence[int]], seq_len: int,
                 max_tokens: int | None = None, pack: bool = True, separator: bool = True,
                 special_tokens: bool = False) -> list[list[int]]:
    """Token sequences of at most ``seq_len`` tokens (and ``max_tokens`` in total). ``pack``:
    texts concatenated (with EOS between them when ``separator``) and cut into full chunks;
    otherwise one (truncated) sequence per text. ``special_tokens``: the tokenizer's own (BOS)."""
    budget = max_tokens if max_tokens is not None else float("inf")
    chunks: list[list[int]] = []
    if pack:
        eos = tokenizer.eos_token_id
        stream: list[int] = []
        for seq in _token_ids(tokenizer, items, lambda: budget - len(stream), special_tokens):
            stream.extend(seq)
            if eos is not None and separator:
                stream.append(eos)
            if len(stream) >= budget:
                break
        stream = stream[: int(min(len(stream), budget))]
        chunks = [stream[i : i + seq_len] for i in range(0, len(stream), seq_len)]
    else:
        used = 0
        for seq in _token_ids(tokenizer, items, lambda: min(seq_len, budget - used), special_tokens):
            if used >= budget:
                break
            seq = seq[: int(min(seq_len, budget - used))]
            if seq:
                chunks.append(seq)
                used += len(seq)
    return [c for c in chunks if len(c) >= 2 or not pack]


def batches(chunks: list[list[int]], batch_size: int, pad_id: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Right-padded ``(input_ids, attention_mask)`` batches (chunks of similar length together)."""
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i]))
    out = []
    for start in range(0, len(order), batch_size):
        group = [chunks[i] for i in order[start : start + batch_size]]
        width = max(len(c) for c in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for r, c in enumerate(group):
            ids[r, : len(c)] = torch.tensor(c)
            mask[r, : len(c)] = 1
        out.append((ids, mask))
    return out


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, per_sequence: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy over real (unpadded) targets: the batch mean and the number of
    targets, or (``per_sequence``) each sequence's summed loss and target count ``([B], [B])``."""
    logits = logits[:, :-1].float()
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    # flattened to [B*T, V]: the class dimension contiguous (3x faster on CPU than [B, V, T])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                           reduction="none" if per_sequence else "mean")
    if per_sequence:
        return loss.view(targets.shape).sum(1), (targets != -100).sum(1)
    return loss, (targets != -100).sum()
