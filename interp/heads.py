"""Per-language attention-head importance, through hooks only (no patched model code).

``lahis`` (the PolyFact study's LAHIS, ``attn_matrix_ted.py``): a head mask ``m`` ``[layers, heads]``
(ones) is the only trainable tensor; text samples run one at a time, and after each the mask takes
an AdamW step (lr 1e-2). Per sample it accumulates ``|∂L/∂m · m| × 1000`` and whether
``∂L/∂m · m < 0`` (with the mask before that sample's step); importance = mean accumulated score ×
fraction of samples with a negative product. A language's heads are its top 2 % by raw importance.

``gradient`` (the project's variant): a head mask ``m`` (ones, ``[layers, heads]``) scales each head's slice
of the ``o_proj`` input; importance is |∂L/∂m|·m, the per-batch magnitude averaged over the
language's tokens (Michel et al. 2019 take the magnitude per batch so signs do not cancel).

``ablation``: each head's slice is replaced by its mean over the language's tokens and the change
in loss is measured, ``Δloss = loss(ablated) − loss(clean)``; importance is |Δloss|.

Summaries: normalized entropy of importance across languages per head, top-k heads per
language, pairwise overlap of the top-k sets, and their distribution over layers.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from polyfact.interp.backends import hook_check, make_backend
from polyfact.interp.batching import CollectConfig, batches, languages_with_text, next_token_loss, pad_id, token_chunks
from polyfact.interp.sites import ArchitectureAdapter, adapter_for
from polyfact.core.errors import PolyFactError
from polyfact.interp.registry import HEAD_METHODS
from polyfact.core.arrays import load_arrays, save_arrays
from polyfact.core.io import atomic_write_bytes, atomic_write_json, read_json

LAHIS_SCALE = 1000.0  # the study multiplies |∂L/∂m · m| by 1000 before averaging (a constant factor)


def importance_entropy(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` ``[languages, layers, heads]`` → normalized entropy over languages ``[layers, heads]``
    (0: one language only; 1: equal for all; heads with no importance count as equal)."""
    s = scores.double().clamp(min=0).permute(1, 2, 0)
    total = s.sum(-1, keepdim=True)
    p = torch.where(total > 0, s / total.clamp(min=1e-300), torch.full_like(s, 1.0 / s.shape[-1]))
    ent = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(-1)
    return ent / math.log(s.shape[-1]) if s.shape[-1] > 1 else torch.zeros_like(ent)


@dataclass
class HeadImportance:
    """``scores[lang_index, layer, head]`` (≥ 0) per language; ``delta`` keeps signed Δloss."""

    languages: list[str]
    scores: torch.Tensor
    method: str
    delta: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # lahis: mean_score, neg_frac, samples

    @property
    def n_layers(self) -> int:
        return self.scores.shape[1]

    @property
    def n_heads(self) -> int:
        return self.scores.shape[2]

    def normalized_entropy(self) -> torch.Tensor:
        """Entropy of each head's importance distribution over languages / log(#languages)."""
        return importance_entropy(self.scores)

    def specificity(self) -> torch.Tensor:
        """Share of each head's importance that falls on each language ``[languages, layers, heads]``."""
        s = self.scores.double().clamp(min=0)
        return s / s.sum(0, keepdim=True).clamp(min=1e-300)

    def top_k(self, k: int, by: str = "specificity") -> dict[str, list[tuple[int, int]]]:
        """The ``k`` heads of each language with the largest ``specificity`` (default: importance
        relative to the other languages) or raw ``importance``."""
        base = self.specificity() if by == "specificity" else self.scores.double()
        out = {}
        for i, lang in enumerate(self.languages):
            flat = base[i].flatten()
            idx = torch.topk(flat, min(k, flat.numel())).indices.tolist()
            out[lang] = [(j // self.n_heads, j % self.n_heads) for j in idx]
        return out

    def topk_jaccard(self, k: int) -> dict[str, dict[str, float]]:
        """Jaccard overlap of the languages' top-k (by specificity) head sets (the project's measure)."""
        tops = {lang: set(v) for lang, v in self.top_k(k).items()}
        return {a: {b: len(tops[a] & tops[b]) / len(tops[a] | tops[b]) if tops[a] | tops[b] else float("nan")
                    for b in self.languages} for a in self.languages}

    def layer_distribution(self, k: int) -> dict[str, list[int]]:
        """How many of each language's top-k heads sit in each layer."""
        out = {}
        for lang, heads in self.top_k(k).items():
            counts = [0] * self.n_layers
            for layer, _ in heads:
                counts[layer] += 1
            out[lang] = counts
        return out

    def n_top(self, frac: float = 0.02) -> int:
        """How many heads the study's top-``frac`` takes: ``max(1, int(layers · heads · frac))``."""
        return max(1, int(self.n_layers * self.n_heads * frac))

    def top(self, frac: float = 0.02) -> dict[str, list[tuple[int, int]]]:
        """Each language's top ``frac`` heads by raw importance (the study's selection), as
        ``(layer, head)`` in descending importance."""
        return self.top_k(self.n_top(frac), by="importance")

    def overlap(self, frac: float = 0.02) -> dict[str, dict[str, float]]:
        """The study's overlap of two languages' top-``frac`` head sets: ``|A ∩ B| / n`` in percent."""
        n = self.n_top(frac)
        tops = {lang: set(v) for lang, v in self.top(frac).items()}
        return {a: {b: 100.0 * len(tops[a] & tops[b]) / n for b in self.languages} for a in self.languages}

    def mean_overlap(self, frac: float = 0.02) -> float:
        """Mean off-diagonal :meth:`overlap` (the study's headline: higher = more shared heads)."""
        m = self.overlap(frac)
        vals = [m[a][b] for a in self.languages for b in self.languages if a != b]
        return sum(vals) / len(vals) if vals else float("nan")

    def layer_profile(self, frac: float = 0.02) -> dict[str, list[float]]:
        """Percentage of each language's top-``frac`` heads in each layer (sums to 100)."""
        out = {}
        for lang, heads in self.top(frac).items():
            counts = [0] * self.n_layers
            for layer, _ in heads:
                counts[layer] += 1
            out[lang] = [100.0 * c / max(len(heads), 1) for c in counts]
        return out

    def write_released(self, folder: str | Path, model: str = "", arch: str = "") -> Path:
        """The study's released layout: one ``lahis_<lang>.pth`` (float ``[layers, heads]``) per
        language and ``meta.json`` (model, arch, langs, data_num, max_length, num_layers, num_heads)."""
        folder = Path(folder)
        for i, lang in enumerate(self.languages):
            buf = io.BytesIO()
            torch.save(self.scores[i].float().clone(), buf)
            atomic_write_bytes(folder / f"lahis_{lang}.pth", buf.getvalue())
        atomic_write_json(folder / "meta.json", {
            "model": model or self.meta.get("model", ""), "arch": arch or self.meta.get("family", ""),
            "langs": self.languages, "data_num": self.meta.get("max_samples"), "max_length": self.meta.get("seq_len"),
            "num_layers": self.n_layers, "num_heads": self.n_heads})
        return folder

    @classmethod
    def read_released(cls, folder: str | Path) -> "HeadImportance":
        """Read the study's released ``lahis_<lang>.pth`` + ``meta.json`` (``weights_only`` loading;
        a bad or missing file is a one-line error naming it)."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        meta: dict[str, Any] = {}
        if meta_path.exists():
            meta = read_json(meta_path, "LAHIS metadata", "re-download the release")
            if not isinstance(meta, dict):
                raise PolyFactError(f"{meta_path} must hold a JSON object (model, langs, num_layers, num_heads)")
            check_meta(meta, meta_path, {"langs": list, "num_layers": int, "num_heads": int, "data_num": int,
                                         "max_length": int, "model": str, "arch": str})
        files = {p.stem[len("lahis_"):]: p for p in folder.glob("lahis_*.pth")}
        if not files:
            raise PolyFactError(f"no lahis_<lang>.pth files in {folder}; pass the folder of a released LAHIS run")
        order = [x for x in meta.get("langs", []) if x in files] + sorted(x for x in files if x not in meta.get("langs", []))
        mats = []
        for lang in order:
            try:
                t = torch.load(files[lang], map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
                raise PolyFactError(f"cannot read {files[lang]} as a plain tensor ({type(err).__name__}): files are "
                                    "loaded without running code from them, so a pickled object is refused; expected "
                                    "a torch.save'd float tensor [layers, heads]") from None
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point() or 0 in t.shape:
                raise PolyFactError(f"{files[lang]} must hold a non-empty float tensor [layers, heads], "
                                    f"got {type(t).__name__} {tuple(getattr(t, 'shape', ()))}")
            if max(t.shape) > MAX_LAYERS_OR_HEADS:
                raise PolyFactError(f"{files[lang]} holds a {tuple(t.shape)} tensor; a model has at most "
                                    f"{MAX_LAYERS_OR_HEADS} layers and heads")
            if not bool(torch.isfinite(t).all()):
                raise PolyFactError(f"{files[lang]} holds NaN or infinite scores; re-download or recompute it")
            mats.append(t.double())
        if meta.get("langs") and set(meta["langs"]) != set(files):
            raise PolyFactError(f"{meta_path} lists languages {sorted(meta['langs'])} but the folder has "
                                f"lahis_<lang>.pth for {sorted(files)}; make them agree")
        shapes = {tuple(m.shape) for m in mats}
        if len(shapes) != 1:
            raise PolyFactError(f"the lahis_<lang>.pth files in {folder} have different shapes {sorted(shapes)}")
        (shape,) = shapes
        for key, n in (("num_layers", shape[0]), ("num_heads", shape[1])):
            if key in meta and meta[key] != n:
                raise PolyFactError(f"{meta_path} says {key}={meta[key]} but the tensors have {n}")
        return cls(order, torch.stack(mats), "lahis", meta={"released": str(folder), **meta})

    def save(self, path: str | Path) -> Path:
        tensors = {"scores": self.scores.double()}
        if self.delta is not None:
            tensors["delta"] = self.delta.double()
        tensors.update({f"part.{k}": v.double() for k, v in self.parts.items()})
        return save_arrays(path, tensors, {"languages": self.languages, "method": self.method, "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> "HeadImportance":
        t, info = load_arrays(path, "head importance")
        parts = {k[len("part."):]: v for k, v in t.items() if k.startswith("part.")}
        try:
            return cls(list(info["languages"]), t["scores"], info["method"], t.get("delta"), dict(info.get("meta", {})),
                       parts)
        except (KeyError, TypeError) as err:
            raise PolyFactError(f"cannot read head importance at {path} (missing {err}); recompute it") from None


MAX_LAYERS_OR_HEADS = 4096


def check_meta(meta: dict, path: Path, types: dict[str, type]) -> None:
    """A released ``meta.json``'s fields have the types the format says (a one-line error naming
    the field otherwise); unknown fields are kept as they are."""
    for key, tp in types.items():
        value = meta.get(key)
        if value is None:
            continue
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if tp is list:
            ok = ok and all(isinstance(x, str) for x in value)
        if tp is int and ok:
            ok = 0 <= value <= 10_000_000
        if not ok:
            raise PolyFactError(f"{path}: {key!r} must be {'a list of language codes' if tp is list else tp.__name__}"
                                f"{' in [0, 1e7]' if tp is int else ''}, got {str(value)[:60]!r}")


class _HeadEdit:
    """The one edit every backend applies to a layer's head outputs ``z`` (``[B, T, H·D]`` or
    ``[B, T, H, D]``): ``z' = m ⊙ z + (1 − m) ⊙ μ`` per head, with mask ``m`` ``[layers, heads]``
    and optional means ``μ`` ``[layers, heads, d_head]``; it can also accumulate head-output sums
    over real tokens (to compute ``μ``)."""

    def __init__(self, n_layers: int, n_heads: int, d_head: int, device: torch.device) -> None:
        self.n_heads, self.d_head = n_heads, d_head
        self.mask = torch.ones(n_layers, n_heads, device=device)
        self.mean: torch.Tensor | None = None
        self.record: torch.Tensor | None = None
        self.token_mask: torch.Tensor | None = None

    def __call__(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[:2]
        heads = z.reshape(b, t, self.n_heads, self.d_head)
        if self.record is not None and self.token_mask is not None:
            self.record[layer] += heads[self.token_mask.to(heads.device)].detach().float().sum(0)
        m = self.mask[layer].to(z.dtype)[None, None, :, None]
        out = heads * m
        if self.mean is not None:
            out = out + (1 - m) * self.mean[layer].to(z.dtype)[None, None]
        return out.reshape(z.shape)


class _Runner:
    """A backend's forward with the head edit applied (what the importance methods call)."""

    def __init__(self, backend, edit: _HeadEdit) -> None:
        self.backend, self.edit = backend, edit

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.backend.logits(ids, mask, self.edit)

    def close(self) -> None:
        self.backend.close()


def _loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over real (unpadded) target positions, and their count."""
    loss, n = next_token_loss(logits, ids, mask)
    return loss, int(n)


def head_importance(
    model: torch.nn.Module,
    tokenizer,
    texts: Mapping[str, Sequence[str] | Sequence[Sequence[int]]],
    method: str = "gradient",
    cfg: CollectConfig | None = None,
    adapter: ArchitectureAdapter | None = None,
    model_dir: str | Path | None = None,
    *,
    lr: float = 1e-2,
    max_samples: int | None = None,
    lahis_accumulation: str = "signed",
) -> HeadImportance:
    """Importance of every head for every language's text, through ``cfg.backend`` (``torch``
    hooks, ``nnsight`` or ``lens``; the latter boots TransformerBridge from ``model_dir``).

    ``lahis`` runs each chunk of ``cfg.seq_len`` tokens as one sample (batch size 1, at most
    ``max_samples`` per language) and updates the mask with AdamW at ``lr`` after each."""
    HEAD_METHODS.check(method, "method")
    cfg = cfg or CollectConfig(backend="torch")
    adapter = adapter or adapter_for(model)
    shape = adapter.shape(model)
    langs = languages_with_text(texts, "head importance")
    pad = pad_id(tokenizer)
    dev = next(model.parameters()).device
    edit = _HeadEdit(shape.n_layers, shape.n_heads, shape.d_head, dev)
    runner = _Runner(make_backend(cfg.backend, model, tokenizer, adapter, shape, model_dir), edit)
    scores = torch.zeros(len(langs), shape.n_layers, shape.n_heads, dtype=torch.float64)
    delta = torch.zeros_like(scores) if method == "ablation" else None
    parts = {"mean_score": torch.zeros_like(scores), "neg_frac": torch.zeros_like(scores),
             "samples": torch.zeros(len(langs), dtype=torch.float64)} if method == "lahis" else {}
    skipped: dict[str, int] = {}
    was_training = model.training
    grads_needed = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    check = None
    try:
        probe = token_chunks(tokenizer, texts[langs[0]], cfg.seq_len, cfg.max_tokens, cfg.pack, cfg.separator,
                             cfg.special_tokens)[:1]
        if probe:  # the head edit at its identity must leave the logits exactly as the bare forward's
            ids, mask = torch.tensor(probe, device=dev), torch.ones(1, len(probe[0]), dtype=torch.long, device=dev)
            check = hook_check(model, cfg.backend, lambda: runner.logits(ids, mask), ids, mask)
        for i, lang in enumerate(tqdm(langs, desc=f"head importance ({method}, {cfg.backend})",
                                      disable=not cfg.progress)):
            chunks = token_chunks(tokenizer, texts[lang], cfg.seq_len, cfg.max_tokens, cfg.pack, cfg.separator,
                                  cfg.special_tokens)
            if method == "lahis":
                samples = [(torch.tensor([c], device=dev), torch.ones(1, len(c), dtype=torch.long, device=dev))
                           for c in chunks[:max_samples] if len(c) >= 2]  # in text order: the mask drifts
                mean_score, neg_frac, bad = _lahis(runner, edit, samples, lr, lahis_accumulation == "signed")
                parts["mean_score"][i], parts["neg_frac"][i] = mean_score, neg_frac
                parts["samples"][i] = len(samples) - bad
                skipped[lang] = bad
                scores[i] = mean_score * neg_frac
                continue
            data = [(ids.to(dev), m.to(dev)) for ids, m in batches(chunks, cfg.batch_size, pad)]
            if method == "gradient":
                scores[i], skipped[lang] = _gradient(runner, edit, data)
            else:
                delta[i] = _ablation(runner, edit, data, shape.n_layers, shape.n_heads, shape.d_head)
                scores[i] = delta[i].abs()
    finally:
        runner.close()
        for p, g in zip(model.parameters(), grads_needed):
            p.requires_grad_(g)
        model.train(was_training)
    meta = {"family": adapter.family, "backend": cfg.backend, "seq_len": cfg.seq_len, "max_tokens": cfg.max_tokens,
            "pack": cfg.pack, "hook_check": check}
    if method == "lahis":
        meta.update({"lr": lr, "max_samples": max_samples, "accumulation": lahis_accumulation})
    if any(skipped.values()):
        import warnings

        meta["skipped_nonfinite"] = {k: v for k, v in skipped.items() if v}
        warnings.warn(f"head importance skipped batches with a non-finite gradient: {meta['skipped_nonfinite']}",
                      stacklevel=2)
    return HeadImportance(langs, scores, method, delta, meta, parts)


def lahis_terms(grad: torch.Tensor, mask: torch.Tensor, signed: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample's LAHIS terms: the score ``|∂L/∂m| · m × 1000`` (``signed``: the study's, with the
    mask's sign) or ``|∂L/∂m · m| × 1000``, and whether ``∂L/∂m · m < 0`` (float64, on the CPU)."""
    grad, mask = grad.float(), mask.float()
    score = grad.abs() * mask if signed else (grad * mask).abs()
    return score.double().cpu() * LAHIS_SCALE, (grad * mask < 0).double().cpu()


def _lahis(runner, edit: _HeadEdit, samples: list, lr: float, signed: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The study's LAHIS accumulation over one language's samples (batch size 1): returns the mean
    of ``|∂L/∂m| · m × 1000`` with the signed current mask (``signed``, the study's
    ``attn_matrix_ted.py``: a mask driven below 0 gives negative scores) or ``|∂L/∂m · m| × 1000``
    (the project's, never negative), and the fraction of samples with ``∂L/∂m · m < 0``; their
    product is the importance, and the number of samples skipped for a non-finite gradient. The mask
    starts at 1 and takes an AdamW step (torch defaults otherwise, as in the study) after every sample."""
    mask = torch.nn.Parameter(torch.ones_like(edit.mask, dtype=torch.float32))
    opt = torch.optim.AdamW([mask], lr=lr)
    total = torch.zeros(mask.shape, dtype=torch.float64)
    negative = torch.zeros(mask.shape, dtype=torch.float64)
    edit.mean = None
    used = 0
    for ids, m in samples:
        grad, _ = _mask_grad(runner, edit, mask, ids, m)
        if grad is None:  # neither counted nor stepped on: one bad sample must not poison the mask
            continue
        score, neg = lahis_terms(grad, mask.detach(), signed)
        total += score
        negative += neg
        mask.grad = grad
        opt.step()
        opt.zero_grad(set_to_none=True)
        used += 1
    edit.mask = torch.ones_like(edit.mask).detach()
    n = max(used, 1)
    return total / n, negative / n, len(samples) - used


def _mask_grad(runner, edit: _HeadEdit, mask: torch.Tensor, ids: torch.Tensor, attn: torch.Tensor
               ) -> tuple[torch.Tensor | None, int]:
    """∂L/∂m of one batch with head mask ``mask`` (None when it is not finite: a bf16 backward can
    overflow on a rare input; such a batch is skipped and counted, never averaged in)."""
    edit.mask = mask
    with torch.enable_grad():
        loss, n = _loss(runner.logits(ids, attn), ids, attn)
        (grad,) = torch.autograd.grad(loss, mask)
    return (grad if bool(torch.isfinite(grad).all()) else None), n


def _gradient(runner, edit: _HeadEdit, data: list) -> tuple[torch.Tensor, int]:
    """Token-weighted mean |∂L/∂m| at m = 1, and how many batches were skipped as non-finite."""
    total = torch.zeros(edit.mask.shape, dtype=torch.float64)
    n_tokens, skipped = 0, 0
    edit.mean = None
    for ids, mask in data:
        grad, n = _mask_grad(runner, edit, torch.ones_like(edit.mask).requires_grad_(True), ids, mask)
        if grad is None:
            skipped += 1
            continue
        total += grad.abs().double().cpu() * n
        n_tokens += n
    edit.mask = torch.ones_like(edit.mask).detach()
    return total / max(n_tokens, 1), skipped


@torch.no_grad()
def _ablation(runner, edit: _HeadEdit, data: list, n_layers: int, n_heads: int, d_head: int) -> torch.Tensor:
    def mean_loss() -> float:
        total, count = 0.0, 0
        for ids, mask in data:
            edit.token_mask = mask.bool()
            loss, n = _loss(runner.logits(ids, mask), ids, mask)
            total += float(loss) * n
            count += n
        return total / max(count, 1)

    edit.mask = torch.ones_like(edit.mask)
    edit.mean = None
    edit.record = torch.zeros(n_layers, n_heads, d_head, device=edit.mask.device)
    clean = mean_loss()
    n_positions = sum(int(m.sum()) for _, m in data)
    edit.mean = edit.record / max(n_positions, 1)
    edit.record, edit.token_mask = None, None
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        for head in range(n_heads):
            edit.mask = torch.ones_like(edit.mask)
            edit.mask[layer, head] = 0.0
            out[layer, head] = mean_loss() - clean
    edit.mask = torch.ones_like(edit.mask)
    edit.mean = None
    return out
