"""Outside extensions: modules that declare training methods and analyses on the toolkit's
registries (``polyfact.training.methods.METHODS``, ``polyfact.pipeline.stages.declare_stage``),
named in ``POLYFACT_PLUGINS`` (comma-separated module names) or installed under the entry-point
group ``polyfact.plugins`` (lm-evaluation-harness' outside-task model). The command line imports
them before it builds its commands, so a declared analysis is ``polyfact analyze NAME`` and a
stage of ``polyfact run``, and a declared method is a name ``methods`` and ``polyfact train`` accept."""

from __future__ import annotations

import importlib
import importlib.metadata
import os

from polyfact.core.errors import PolyFactError

ENV = "POLYFACT_PLUGINS"
GROUP = "polyfact.plugins"
_loaded: list[str] = []


def plugin_modules() -> list[str]:
    """The plugin modules named by ``POLYFACT_PLUGINS`` and the ``polyfact.plugins`` entry points."""
    names = [x.strip() for x in os.environ.get(ENV, "").split(",") if x.strip()]
    names += [ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group=GROUP)]
    return list(dict.fromkeys(names))


def load_plugins() -> list[str]:
    """Import every plugin module once; a module that fails to import is a one-line error."""
    for name in plugin_modules():
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure of an outside module is the plugin's
            raise PolyFactError(f"plugin {name!r} failed to import ({type(err).__name__}: {err}); fix it or remove it "
                                f"from {ENV} / the {GROUP} entry points") from None
        _loaded.append(name)
    return list(_loaded)
