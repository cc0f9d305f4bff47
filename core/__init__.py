"""The bottom layer (docs/ARCHITECTURE.md): the user-facing error, atomic I/O and the reader of
cached files, the run directory's layout, checkpoint manifests and loading, provenance and
freshness, and :class:`Run`, one handle on a run for notebooks (imported lazily: the dataset
layer uses ``core`` without loading torch)."""

from core.errors import PolyFactError
from core.layout import RunLayout, layout

__all__ = ["PolyFactError", "Run", "RunLayout", "layout"]


def __getattr__(name: str):
    if name == "Run":
        from core.run import Run

        return Run
    raise AttributeError(name)
