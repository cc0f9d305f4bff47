"""Your own model in a notebook: how language-specialized are its neurons and heads, and how did a
fine-tune change them — in three lines, with the command line's defaults and no run directory::

    import polyfact
    spec = polyfact.specialize(model, tokenizer)            # the packaged probe text, 22 languages
    spec.to_frame(); spec.figure()
    change = polyfact.compare(base_model, tuned_model, tokenizer)   # κ with its interval

``texts`` is ``{lang: [str, …]}``, a ``datasets.Dataset`` with ``lang`` and ``text`` columns, a
``files:DIR`` folder of ``<lang>.txt`` (the CLI's text source) or None (the packaged probe text).
Neurons: LAPE (both variants, the study's top 1 %); heads: LAHIS (the study's top 2 %), as the
command line defaults; every measurement proves its hooks left the logits unchanged
(``hook_checks``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from polyfact.analyses.config import SpecializationConfig
from polyfact.core.errors import PolyFactError

Texts = Mapping[str, list[str]] | Any  # a dict, a datasets.Dataset, "files:DIR" or None


def as_texts(texts: Texts, langs: list[str] | None = None) -> dict[str, list[str]]:
    """``{lang: [text, …]}`` from any accepted form (see the module docstring)."""
    if texts is None:
        from polyfact.data.probe import probe_texts

        return probe_texts(langs)
    if isinstance(texts, str):
        kind, _, where = texts.partition(":")
        if kind != "files" or not where:
            raise PolyFactError(f"texts {texts!r}: a string must be files:DIR (a folder of <lang>.txt files)")
        folder = Path(where)
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise PolyFactError(f"texts files:{where}: no <lang>.txt files there")
        out = {p.stem: [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()] for p in files}
    elif hasattr(texts, "column_names"):  # a datasets.Dataset
        if not {"lang", "text"} <= set(texts.column_names):
            raise PolyFactError(f"a Dataset of texts needs 'lang' and 'text' columns; it has {texts.column_names}")
        out = {}
        for lang, text in zip(texts["lang"], texts["text"]):
            out.setdefault(lang, []).append(text)
    elif isinstance(texts, Mapping):
        out = {str(k): [t for t in v if isinstance(t, str) and t.strip()] for k, v in texts.items()}
    else:
        raise PolyFactError(f"texts must be a dict of language → list of strings, a datasets.Dataset, 'files:DIR' "
                            f"or None; got {type(texts).__name__}")
    out = {k: v for k, v in out.items() if v and (langs is None or k in langs)}
    if len(out) < 2:
        raise PolyFactError(f"specialization compares languages: texts in two or more are needed; got {list(out)}")
    return out


@dataclass
class Specialization:
    """A model's language specialization: LAPE neurons, head importance and the statistics behind them."""

    neurons: Any  # polyfact.interp.lape.LapeResult (the study's variant)
    tang: Any  # the Tang et al. variant
    heads: Any  # polyfact.interp.heads.HeadImportance
    stats: Any  # polyfact.interp.stats.ActivationStats
    top_frac: float
    head_top_frac: float
    hook_checks: dict[str, Any] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return list(self.stats.languages)

    def to_frame(self):
        """One row per language: language-specific neurons (LAPE, both variants), the study's top
        heads and their mean overlap with the other languages' (%), and tokens read."""
        import pandas as pd

        top = self.heads.top(self.head_top_frac)
        overlap = self.heads.overlap(self.head_top_frac)
        rows = []
        for i, lang in enumerate(self.languages):
            others = [v for k, v in overlap.get(lang, {}).items() if k != lang]
            rows.append({"language": lang, "neurons": self.neurons.counts().get(lang, 0),
                         "neurons (Tang)": self.tang.counts().get(lang, 0), "top heads": len(top.get(lang, [])),
                         "head overlap %": float(np.mean(others)) if others else float("nan"),
                         "tokens": int(self.stats.tokens[i])})
        return pd.DataFrame(rows).set_index("language")

    def figure(self):
        """Language-specific neurons per layer and language (LAPE) beside the heads' mean overlap."""
        from plotly.subplots import make_subplots

        per_layer = self.neurons.per_layer()
        fig = make_subplots(rows=1, cols=2, subplot_titles=("Language-specific neurons per layer (LAPE)",
                                                            "Top heads: overlap between languages (%)"))
        for lang, counts in per_layer.items():
            fig.add_scatter(x=list(range(len(counts))), y=counts, name=lang, mode="lines+markers", row=1, col=1)
        overlap = self.heads.overlap(self.head_top_frac)
        langs = self.languages
        fig.add_heatmap(z=[[overlap.get(a, {}).get(b, float("nan")) for b in langs] for a in langs], x=langs, y=langs,
                        colorscale="Blues", showscale=False, row=1, col=2)
        fig.update_xaxes(title_text="layer", row=1, col=1)
        fig.update_layout(height=420, title="Language specialization")
        return fig


def _measure(model, tokenizer, text: dict[str, list[str]], cfg: SpecializationConfig, progress: bool):
    """Activation statistics and head importance of ``model`` over ``text`` (keys may be shards)."""
    from polyfact.interp import CollectConfig, collect_stats, head_importance

    no_lens = lambda b: "torch" if b == "lens" else b  # noqa: E731 - the bridge needs a checkpoint directory
    stats = collect_stats(model, tokenizer, text, CollectConfig(backend=no_lens(cfg.backend), seq_len=cfg.seq_len,
                                                                batch_size=cfg.batch_size, max_tokens=cfg.max_tokens,
                                                                separator=cfg.lape_separator, progress=progress))
    heads = head_importance(model, tokenizer, text, cfg.head_method,
                            CollectConfig(backend=no_lens(cfg.head_backend), seq_len=cfg.head_seq_len or cfg.seq_len,
                                          max_tokens=cfg.head_max_tokens, batch_size=cfg.batch_size,
                                          progress=progress),
                            lr=cfg.head_lr, max_samples=cfg.head_max_samples,
                            lahis_accumulation=cfg.lahis_accumulation)
    return stats, heads


def _specialization(stats, heads, cfg: SpecializationConfig) -> Specialization:
    from polyfact.interp.lape import lape

    probs = stats.act_prob()
    return Specialization(lape(probs, stats.languages, cfg.top_frac, "polyfact", count=cfg.lape_count),
                          lape(probs, stats.languages, cfg.top_frac, "tang", count=cfg.lape_count), heads, stats,
                          cfg.top_frac, cfg.head_top_frac,
                          {"neurons": stats.meta.get("hook_check"), "heads": heads.meta.get("hook_check")})


def specialize(model, tokenizer, texts: Texts = None, *, langs: list[str] | None = None,
               cfg: SpecializationConfig | None = None, progress: bool = True) -> Specialization:
    """Neurons (LAPE) and heads (LAHIS) of ``model`` over ``texts``, with the CLI's defaults
    (``cfg``: a :class:`SpecializationConfig` to change them)."""
    cfg = cfg or SpecializationConfig()
    return _specialization(*_measure(model, tokenizer, as_texts(texts, langs), cfg, progress), cfg)


@dataclass
class Comparison:
    """How ``after`` differs from ``before``: the neuron and head contrast change κ (negative: the
    languages' profiles moved together) with 95 % intervals over text shards (measurement error of
    these two models, not training noise), and both specializations."""

    before: Specialization
    after: Specialization
    neuron_kappa: float
    neuron_ci: tuple[float, float]
    head_kappa: float
    head_ci: tuple[float, float]

    def __repr__(self) -> str:
        return (f"Comparison(neuron κ {self.neuron_kappa:+.3f} [{self.neuron_ci[0]:+.3f}, {self.neuron_ci[1]:+.3f}], "
                f"head κ {self.head_kappa:+.3f} [{self.head_ci[0]:+.3f}, {self.head_ci[1]:+.3f}]; "
                "95 % intervals over text shards)")

    def to_frame(self):
        """Per language: the change in language-specific neurons and in head overlap."""
        a, b = self.before.to_frame(), self.after.to_frame()
        return (b[["neurons", "head overlap %"]] - a[["neurons", "head overlap %"]]).add_prefix("Δ ")


def compare(before, after, tokenizer, texts: Texts = None, *, langs: list[str] | None = None,
            cfg: SpecializationConfig | None = None, bootstrap: int = 200, seed: int = 0,
            progress: bool = True) -> Comparison:
    """The change of specialization from ``before`` to ``after`` (two models sharing ``tokenizer``)
    on the same texts: the routing analysis' cross-fitted contrast change κ of neurons and heads,
    with a bootstrap interval over ``cfg.shards`` interleaved text groups per language."""
    from polyfact.analyses.config import RoutingConfig
    from polyfact.analyses.routing import _head_values, _language_probs, _layout, contrast_with_error
    from polyfact.analyses.specialization import merge_head_shards, merge_shards, shard_texts

    cfg = cfg or SpecializationConfig()
    sharded = shard_texts(as_texts(texts, langs), cfg.shards)
    (sa, ha), (sb, hb) = (_measure(m, tokenizer, sharded, cfg, progress) for m in (before, after))
    rcfg = RoutingConfig(bootstrap=bootstrap)
    _, assign = _layout(sa.languages)
    nk = contrast_with_error(_language_probs, sb, sa, assign, rcfg, seed)
    _, hassign = _layout(ha.languages)
    hk = contrast_with_error(_head_values, hb, ha, hassign, rcfg, seed)
    spec = [_specialization(merge_shards(s), merge_head_shards(h), cfg) for s, h in ((sa, ha), (sb, hb))]
    return Comparison(spec[0], spec[1], nk["delta"][0], (nk["ci"][0][0], nk["ci"][1][0]), hk["delta"][0],
                      (hk["ci"][0][0], hk["ci"][1][0]))
