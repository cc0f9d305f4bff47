"""The bottom layer (docs/ARCHITECTURE.md): the user-facing error, atomic I/O and the reader of
cached files, the run directory's layout, checkpoint manifests and loading, provenance and
freshness, and :class:`Run`, one handle on a run for notebooks (imported lazily: the dataset
layer uses ``core`` without loading torch)."""

from polyfact.core.errors import PolyFactError
from polyfact.core.layout import RunLayout, layout

__all__ = ["PolyFactError", "Run", "RunLayout", "layout"]


def __getattr__(name: str):
    if name == "Run":
        from polyfact.core.run import Run

        return Run
    raise AttributeError(name)
