"""Text the analyzers run on, per language, named by a spec (``--texts KIND[:ARGS]``); every kind
is one function registered in :data:`TEXT_SOURCES`:

``dataset`` / ``dataset:SPLIT``  the run dataset's questions (all splits, or one);
``statements``                   the toy world's natural-language statements of the run's facts,
                                 then its questions (the default of the toy runs);
``files:DIR``                    ``DIR/<lang>.txt``, one text per line;
``hf:PATH:COLUMN[:LANG_COLUMN]`` a dataset saved with ``save_to_disk``, grouped by its language
                                 column (default ``lang``);
``multiway:FILE.jsonl``          TED2025-style multi-way parallel text (the study's), streamed.

Every source returns a :class:`TextSource`: texts per language, a fingerprint of what was read,
and a description that result files and the report state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from polyfact.core.errors import PolyFactError
from polyfact.core.io import fingerprint
from polyfact.core.layout import check_id
from polyfact.core.registry import Registry

TEXT_SOURCES: Registry = Registry("text source")
TEXT_SOURCES.add("dataset", "the run dataset's questions (dataset:SPLIT for one split)", "polyfact.analyses.texts:_dataset",
                 usage="dataset[:SPLIT]")
TEXT_SOURCES.add("statements", "the toy world's statements of the run's facts, then its questions",
                 "polyfact.analyses.texts:_dataset", usage="statements")
TEXT_SOURCES.add("files", "DIR/<lang>.txt, one text per line", "polyfact.analyses.texts:_files", usage="files:DIR")
TEXT_SOURCES.add("hf", "a dataset saved with save_to_disk, grouped by its language column", "polyfact.analyses.texts:_hf",
                 usage="hf:PATH:COLUMN[:LANG_COLUMN]")
TEXT_SOURCES.add("multiway", "TED2025-style multi-way parallel text (the study's)", "polyfact.analyses.texts:_multiway",
                 usage="multiway:FILE.jsonl")


@dataclass
class TextSource:
    texts: dict[str, list[str]]
    fingerprint: str
    description: str


def spec_kind(spec: str) -> str:
    """The registered kind of a ``--texts`` spec (a one-line error listing the kinds otherwise)."""
    kind = spec.split(":", 1)[0]
    if kind not in TEXT_SOURCES:
        usages = ", ".join(e["usage"] for e in TEXT_SOURCES.entries())
        raise PolyFactError(f"unknown text source {spec!r}; use one of: {usages}")
    return kind


def text_source(run_dir: str | Path, spec: str | None, langs: list[str] | None = None, *, join: int = 1,
                max_chars: int | None = None) -> TextSource:
    """The texts of ``spec`` (default ``dataset``) for ``langs`` (default: all the source has).
    ``join`` and ``max_chars`` apply to multi-way text (segments per text, characters per language)."""
    spec = spec or "dataset"
    fn = TEXT_SOURCES.load(spec_kind(spec))
    source = fn(run_dir, spec, langs or None, join=join, max_chars=max_chars)
    for lang in source.texts:  # language codes become file names (lahis_<lang>.pth) and shard keys (lang#s)
        check_id(lang, f"language code of --texts {spec}")
    with_text = [lang for lang, items in source.texts.items() if any(items)]
    if len(with_text) < 2:
        raise PolyFactError(f"--texts {spec} has text in {len(with_text)} language(s) ({', '.join(with_text) or 'none'});"
                            " specialization compares languages: give it text in two or more")
    return source


def _dataset(run_dir: str | Path, spec: str, langs: list[str] | None, **_: object) -> TextSource:
    keep = set(langs) if langs else None
    from polyfact.core.layout import layout
    from polyfact.data.dataset import data_fingerprint

    path = layout(run_dir).data
    if not (path / "dataset_dict.json").exists():
        raise PolyFactError(f"--texts {spec} reads the run's dataset, and {run_dir} has none; build one "
                            "(polyfact data build --out RUN/data) or pass --texts files:DIR, hf:PATH:COLUMN or "
                            "multiway:FILE.jsonl")
    # one stage asks for the same texts once per checkpoint and shard: built once per data version
    src = _dataset_texts(path.resolve(), data_fingerprint(path), spec, tuple(sorted(keep)) if keep is not None else None)
    return TextSource({lang: list(items) for lang, items in src.texts.items()}, src.fingerprint, src.description)


@functools.lru_cache(maxsize=8)
def _dataset_texts(path: Path, data_fingerprint: str, spec: str, langs: tuple[str, ...] | None) -> TextSource:
    from polyfact.training.evaluation.data import RunData
    from polyfact.training.corpus import statement

    split = spec.split(":", 1)[1] if spec.startswith("dataset:") else None
    rows = [r for r in RunData(path.parent, path).rows(split) if langs is None or r["lang"] in langs]
    out: dict[str, list[str]] = {}
    if spec == "statements":
        for r in rows:
            out.setdefault(r["lang"], []).append(statement(r))
    for r in rows:
        out.setdefault(r["lang"], []).append(r["question"])
    what = "statements and questions" if spec == "statements" else f"questions ({split or 'all splits'})"
    return TextSource(out, data_fingerprint if spec != "statements" else fingerprint([data_fingerprint, spec]),
                      f"the run dataset's {what}")


def read_lines(path: Path, max_chars: int | None = None) -> list[str]:
    """The non-empty lines of a UTF-8 text file, read until ``max_chars`` characters are kept (a
    decoding error names the file and the line)."""
    from polyfact.data.sources.multiway import utf8_lines

    out, chars = [], 0
    try:
        with open(path, "rb") as fh:
            for _, line in utf8_lines(fh, path):
                line = line.rstrip("\r\n")
                if line.strip():
                    out.append(line)
                    chars += len(line)
                    if max_chars is not None and chars >= max_chars:
                        break
    except OSError as err:
        raise PolyFactError(f"cannot read {path}: {err.strerror}") from None
    return out


def _files(run_dir: str | Path, spec: str, langs: list[str] | None, *, max_chars: int | None = None,
           **_: object) -> TextSource:
    keep = set(langs) if langs else None
    folder = Path(spec[len("files:"):])
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise PolyFactError(f"no <lang>.txt files in {folder}; write one file per language")
    texts = {f.stem: read_lines(f, max_chars) for f in files if keep is None or f.stem in keep}
    return TextSource(texts, fingerprint(texts), f"text files in {folder}")


def _hf(run_dir: str | Path, spec: str, langs: list[str] | None, **_: object) -> TextSource:
    keep = set(langs) if langs else None
    parts = spec[len("hf:"):].split(":")
    if len(parts) < 2:
        raise PolyFactError("--texts hf:PATH:COLUMN[:LANG_COLUMN] needs a path and a text column")
    import datasets

    path, column = parts[0], parts[1]
    lang_col = parts[2] if len(parts) > 2 else "lang"
    try:
        ds = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise PolyFactError(f"no dataset saved at {path} (datasets.save_to_disk)") from None
    if isinstance(ds, datasets.DatasetDict):
        ds = datasets.concatenate_datasets(list(ds.values()))
    for col in (column, lang_col):
        if col not in ds.column_names:
            raise PolyFactError(f"dataset {path} has no column {col!r}; it has {', '.join(ds.column_names)}")
    if len(ds) == 0:
        raise PolyFactError(f"the dataset at {path} has no rows; pass one with text")
    out: dict[str, list[str]] = {}
    for text, lang in zip(ds[column], ds[lang_col]):
        if isinstance(text, str) and text.strip() and isinstance(lang, str) and (keep is None or lang in keep):
            out.setdefault(lang, []).append(text)
    return TextSource(out, ds._fingerprint, f"column {column!r} of the dataset at {path}")


def _multiway(run_dir: str | Path, spec: str, langs: list[str] | None, *, join: int = 1,
              max_chars: int | None = None) -> TextSource:
    from polyfact.data.sources.multiway import multiway_texts

    path = Path(spec[len("multiway:"):])
    texts = multiway_texts(path, langs, join=join, max_chars=max_chars)
    st = path.stat()
    fp = fingerprint({"file": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, "join": join,
                      "max_chars": max_chars, "langs": sorted(texts)})
    return TextSource(texts, fp, f"multi-way parallel text {path.name}" + (f", {join} segments per text"
                                                                          if join > 1 else ""))
