"""Validated readers of the PolyFact study's released results (github ``jvonrad/Lost-in-Mistranslation``).

A release directory has the layout of the study's ``results/`` folder or of its public release
(``summary/`` holding what the study's scripts read from ``results/``)::

    [summary/]<tag>_<benchmark>_consistency.json    benchmark: polyfact_clean, bmlama53, gmmlu_lite, polyfact
    [summary/]klar/<tag>_klar_alllangs.json         per_lang: {lang: [correct, total]}
    [summary/]mexa/<tag>_mexa.json                  alignment[raw|centered].per_layer[x_y|en_x]
    lape/<tag>/lape_results.json + meta.json        {layer (1-based): {lang: [neuron, ...]}}
    olmo2/olmo2_<lang>.pth, olmo2_finetuned/olmo2_ft_<lang>.pth, lahis/<tag>/lahis_<lang>.pth
                                                    LAHIS head importance, float [layers, heads]

``DIR`` may be the release root, the study's ``results/`` folder, or a folder holding ``results/``.
Every value is validated on read; a malformed file is a one-line :class:`PolyFactError` naming the
file and what was expected. Checkpoint *roles* (base, sft, …) map to the study's tags per model
family (:data:`FAMILY_TAGS`); a role may list alternative names of one checkpoint (the study's
``qwen-sw-clip5`` and ``qwen-grpo`` are the same GRPO model), and the first that has a file of the
kind asked for is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from polyfact.analyses.paper.files import (PAPER_LANGS, Consistency, Klar, Lape, Mexa, read_consistency, read_klar, read_lahis,
                                  read_lape, read_mexa)
from polyfact.core.errors import PolyFactError

__all__ = ["BENCHMARKS", "Consistency", "FAMILY_TAGS", "Family", "HIGH", "KLAR_TRAINED", "Klar", "LOW", "Lape", "Mexa",
           "PAPER_LANGS", "ROLES", "ROLE_LABELS", "Release", "open_release", "parse_tags", "read_consistency",
           "read_klar", "read_lahis", "read_lape", "read_mexa"]

BENCHMARKS = {"polyfact_clean": "PolyFact-Clean", "bmlama53": "BMLAMA-53", "gmmlu_lite": "Global-MMLU-Lite",
              "polyfact": "PolyFact (WIKI-FACT)"}
HIGH = ("en", "de", "pt", "ar", "es", "ru", "fr", "ja", "zh")
LOW = ("id", "bn", "sw")
KLAR_TRAINED = ("en", "es", "fr", "ru", "zh", "ja", "ar")
ROLES = ("base", "sft", "dco", "cm-align", "grpo", "cpt", "cpt+sft", "cpt+dco", "cpt+grpo")
ROLE_LABELS = {"base": "Base", "sft": "SFT", "dco": "DCO", "cm-align": "CM-Align", "grpo": "GRPO", "cpt": "CPT",
               "cpt+sft": "CPT+SFT", "cpt+dco": "CPT+DCO", "cpt+grpo": "CPT+GRPO"}
FAMILY_LABELS = {"qwen": "Qwen-2.5-7B", "olmo": "OLMo-2-1124-7B", "release": "release"}
FAMILY_TAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "qwen": {"base": ("qwen-base",), "sft": ("qwen-sft-10k",), "dco": ("qwen-dco-10k",),
             "cm-align": ("qwen-cmalign-10k",), "grpo": ("qwen-sw-clip5", "qwen-grpo"), "cpt": ("Qwen-2.5-7B-TED",),
             "cpt+sft": ("qwen-cpt-sft-10k",), "cpt+dco": ("qwen-cpt-dco-10k",),
             "cpt+grpo": ("Qwen-2.5-7B-TED-grpo",)},
    "olmo": {"base": ("olmo-base",), "sft": ("olmo-sft-10k",), "dco": ("olmo-dco-10k",),
             "cm-align": ("olmo-cmalign-10k",), "grpo": ("olmo-grpo-attmlp", "olmo-ladder10k-s6500"),
             "cpt": ("olmo-finetranslations",), "cpt+sft": ("olmo-cpt-sft-10k",), "cpt+dco": ("olmo-cpt-dco-10k",),
             "cpt+grpo": ("olmo-2-7b-finetranslation-wikifact-grpo-att-mlp-checkpoint", "olmo-cpt-grpo")},
}
LAHIS_MODELS = {"olmo2": ("olmo2", "olmo2_", "OLMo-2-7B (base)"),
                "olmo2_ft": ("olmo2_finetuned", "olmo2_ft_", "OLMo-2-7B (SFT)")}
KINDS = (*BENCHMARKS, "klar", "mexa", "lape")


# --------------------------------------------------------------------------------------------
# The release directory


@dataclass
class Family:
    """Checkpoint roles of one model family: ``roles[role] = (tag, alternative names…)``."""

    name: str
    roles: dict[str, tuple[str, ...]]
    label: str = ""


@dataclass
class Release:
    """A release directory: where each kind of file lives, which tags it holds, and the resolved
    roles per family. Build with :func:`open_release`."""

    root: Path
    bases: list[Path]
    families: list[Family] = field(default_factory=list)
    _index: dict[str, dict[str, Path]] = field(default_factory=dict)

    def path(self, kind: str, tag: str) -> Path | None:
        """The file (or LAPE folder) of ``kind`` for ``tag``, if the release has it."""
        return self._index.get(kind, {}).get(tag)

    def tags(self, kind: str | None = None) -> set[str]:
        """Tags with a file of ``kind`` (any kind when None)."""
        kinds = [kind] if kind else list(self._index)
        return {t for k in kinds for t in self._index.get(k, {})}

    def tag_for(self, family: Family, role: str, kind: str) -> str | None:
        """The first of a role's names that has a file of ``kind``."""
        return next((t for t in family.roles.get(role, ()) if self.path(kind, t)), None)

    def expected(self, kind: str, tag: str) -> str:
        """Where a missing file of ``kind`` for ``tag`` would be (relative to the release), for skip lines."""
        if kind == "lape":
            return f"lape/{tag}/lape_results.json"
        rel = {"klar": f"klar/{tag}_klar_alllangs.json", "mexa": f"mexa/{tag}_mexa.json"}.get(
            kind, f"{tag}_{kind}_consistency.json")
        return self.relative(self.bases[-1] / rel) if self.bases else rel

    def relative(self, p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)

    def lahis_sets(self) -> dict[str, tuple[dict[str, Path], str]]:
        """``{model: ({lang: file}, label)}``: the study's ``olmo2*`` folders and ``lahis/<tag>/``."""
        out: dict[str, tuple[dict[str, Path], str]] = {}
        for top in self._tops():
            for name, (folder, prefix, label) in LAHIS_MODELS.items():
                files = {p.stem[len(prefix):]: p for p in sorted((top / folder).glob(f"{prefix}*.pth"))
                         if p.is_file() and "_" not in p.stem[len(prefix):]}
                if files and name not in out:
                    out[name] = (files, label)
            lahis = top / "lahis"
            for d in sorted(x for x in lahis.iterdir() if x.is_dir()) if lahis.is_dir() else []:
                files = {p.stem[len("lahis_"):]: p for p in sorted(d.glob("lahis_*.pth")) if p.is_file()}
                if files and d.name not in out:
                    out[d.name] = (files, d.name)
        return out

    def _tops(self) -> list[Path]:
        return list(dict.fromkeys([self.root, *(b for b in self.bases if b.name != "summary")]))


def _index(bases: Iterable[Path]) -> dict[str, dict[str, Path]]:
    """Tags per kind; earlier bases win (the study's full files before the stripped summaries)."""
    out: dict[str, dict[str, Path]] = {k: {} for k in KINDS}
    for base in bases:
        for p in sorted(base.glob("*_consistency.json")):
            stem = p.name[: -len("_consistency.json")]
            for bench in sorted(BENCHMARKS, key=len, reverse=True):  # polyfact_clean before polyfact
                if stem.endswith("_" + bench):
                    out[bench].setdefault(stem[: -len(bench) - 1], p)
                    break
        for p in sorted((base / "klar").glob("*_klar_alllangs.json")):
            out["klar"].setdefault(p.name[: -len("_klar_alllangs.json")], p)
        for p in sorted((base / "mexa").glob("*_mexa.json")):
            out["mexa"].setdefault(p.name[: -len("_mexa.json")], p)
    return out


def _bases(root: Path) -> list[Path]:
    """Folders that hold ``<tag>_*.json``, ``klar/`` and ``mexa/``, most complete first."""
    results = root / "results" if (root / "results").is_dir() and not (root / "summary").is_dir() else root
    return [b for b in (results, results / "summary") if b.is_dir()]


def open_release(release_dir: str | Path, tags: Mapping[str, str | Iterable[str]] | None = None) -> Release:
    """Index a release directory and resolve the checkpoint roles.

    Defaults: each family of :data:`FAMILY_TAGS` with at least one of its tags in ``DIR``.
    ``tags`` (role → tag, or several names of one checkpoint joined by ``|``) replaces the
    defaults of the roles it names in the first family found. A release with none of the expected
    files, an unknown role, or a tag that names nothing in ``DIR`` is a one-line error."""
    root = Path(release_dir)
    if not root.is_dir():
        raise PolyFactError(f"release directory not found: {root}; pass the study's release root or its results/ folder")
    bases = _bases(root)
    rel = Release(root, bases)
    rel._index = _index(bases)
    lape_dirs = [b / "lape" for b in (root, *bases)]
    for d in lape_dirs:
        for p in sorted(d.glob("*/lape_results.json")) if d.is_dir() else []:
            rel._index["lape"].setdefault(p.parent.name, p.parent)
    if not rel.tags() and not rel.lahis_sets():
        raise PolyFactError(
            f"{root} holds none of the study's result files (summary/<tag>_<benchmark>_consistency.json, "
            "summary/klar/<tag>_klar_alllangs.json, summary/mexa/<tag>_mexa.json, lape/<tag>/lape_results.json, "
            "olmo2*/ LAHIS .pth); pass the release root or the study's results/ folder")
    present = rel.tags()
    for name, roles in FAMILY_TAGS.items():
        found = {r: t for r, t in roles.items() if any(x in present for x in t)}
        if found:
            rel.families.append(Family(name, dict(roles), FAMILY_LABELS[name]))
    if tags:
        unknown = sorted(set(tags) - set(ROLES))
        if unknown:
            raise PolyFactError(f"unknown role(s) {', '.join(unknown)} in --tags; use: {', '.join(ROLES)} "
                                "(e.g. --tags base=qwen-base,grpo=qwen-sw-clip5|qwen-grpo)")
        if not rel.families:
            rel.families.append(Family("release", {}, FAMILY_LABELS["release"]))
        for role, value in tags.items():
            names = tuple(x.strip() for x in (value.split("|") if isinstance(value, str) else value) if x.strip())
            missing = [x for x in names if x not in present]
            if not names or missing:
                shown = ", ".join(sorted(present)[:15]) + (", …" if len(present) > 15 else "")
                raise PolyFactError(f"tag {(missing or [value])[0]!r} (role {role}) names nothing in {root}: no "
                                    f"<tag>_<benchmark>_consistency.json, klar/, mexa/ or lape/ file; tags there: {shown}")
            rel.families[0].roles[role] = names
    return rel


def parse_tags(spec: str | None) -> dict[str, str]:
    """``"base=qwen-base,grpo=qwen-sw-clip5|qwen-grpo"`` → ``{role: tags}`` (``|`` joins names of one
    checkpoint); a malformed item or unknown role is a one-line error."""
    out: dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        role, sep, value = item.partition("=")
        role, value = role.strip(), value.strip()
        if not sep or not role or not value:
            raise PolyFactError(f"--tags item {item.strip()!r} must read role=tag, e.g. --tags base=qwen-base,sft=qwen-sft-10k")
        if role not in ROLES:
            raise PolyFactError(f"unknown role {role!r} in --tags; use: {', '.join(ROLES)}")
        if role in out:
            raise PolyFactError(f"--tags gives the role {role!r} twice ({out[role]} and {value}); join names of one "
                                f"checkpoint with | ({role}={out[role]}|{value})")
        out[role] = value
    return out
