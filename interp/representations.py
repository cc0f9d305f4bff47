"""Shared representations across languages: per-layer states of parallel inputs (mean-pooled and
last token, read at ``resid_post``), cosine similarity, linear CKA, retrieval P@1, language-ID
probes (scikit-learn) and the logit lens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from polyfact.interp.sites import adapter_for


@dataclass
class LayerStates:
    """``mean[i, layer]`` and ``last[i, layer]``: states of input ``i`` after each layer."""

    mean: torch.Tensor  # [n, layers, d]
    last: torch.Tensor  # [n, layers, d]


@torch.inference_mode()
def layer_states(model: torch.nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 16) -> LayerStates:
    """Mean-pooled and last-token residual states after every layer for each text."""
    adapter = adapter_for(model)
    shape = adapter.shape(model)
    dev = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handles = [adapter.module(model, "resid_post", layer).register_forward_hook(
        lambda mod, inp, out: captured.append(out[0] if isinstance(out, tuple) else out))
        for layer in range(shape.n_layers)]
    means, lasts = [], []
    old = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True).to(dev)
            captured.clear()
            model(**enc, use_cache=False, logits_to_keep=1)  # states only: the LM head for one position
            mask = enc["attention_mask"].float()
            last_idx = enc["attention_mask"].sum(1) - 1
            hs = torch.stack(captured, dim=1).float()  # [b, layers, t, d]
            means.append((hs * mask[:, None, :, None]).sum(2) / mask.sum(1)[:, None, None])
            lasts.append(hs[torch.arange(hs.shape[0]), :, last_idx])
    finally:
        tokenizer.padding_side = old
        for h in handles:
            h.remove()
    return LayerStates(torch.cat(means).cpu(), torch.cat(lasts).cpu())


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cosine similarity of paired rows of ``x`` and ``y`` (``[n, d]``)."""
    return float(torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=-1).mean())


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019): ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred ``[n, d]``."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    num = torch.linalg.matrix_norm(y.T @ x) ** 2
    den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


def retrieval_p1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows ``i`` of ``x`` whose nearest row of ``y`` by cosine is row ``i``."""
    xn = torch.nn.functional.normalize(x.double(), dim=-1)
    yn = torch.nn.functional.normalize(y.double(), dim=-1)
    return float(((xn @ yn.T).argmax(1) == torch.arange(x.shape[0])).double().mean())


def probe_accuracy(states: torch.Tensor, labels: Sequence[str], folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic-regression language-ID probe on ``states`` ``[n, d]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    n_splits = max(2, min(folds, int(min(np.unique(y, return_counts=True)[1]))))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, states.double().numpy(), y, cv=cv).mean())


@torch.inference_mode()
def logit_lens(model: torch.nn.Module, tokenizer, prompts: Sequence[str], targets: Sequence[Sequence[int]],
               batch_size: int = 16) -> torch.Tensor:
    """Probability of each target token after each prompt, decoded from every layer's last-token
    state through the final norm and the unembedding: ``[n_prompts, layers, n_targets]``."""
    adapter = adapter_for(model)
    norm = model if adapter.final_norm else torch.nn.Identity()
    for part in adapter.final_norm.split(".") if adapter.final_norm else ():
        norm = getattr(norm, part)
    unembed = model
    for part in adapter.unembed.split("."):
        unembed = getattr(unembed, part)
    states = layer_states(model, tokenizer, prompts, batch_size).last  # [n, layers, d]
    dev = next(model.parameters()).device
    out = []
    for i in range(0, states.shape[0], batch_size):
        h = states[i : i + batch_size].to(dev, next(model.parameters()).dtype)
        probs = unembed(norm(h)).float().softmax(-1)  # [b, layers, vocab]
        tgt = torch.tensor([list(t) for t in targets[i : i + batch_size]], device=dev)
        out.append(torch.gather(probs, 2, tgt[:, None, :].expand(-1, probs.shape[1], -1)).cpu())
    return torch.cat(out)
