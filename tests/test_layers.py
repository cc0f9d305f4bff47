"""One installed import name, and docs/ARCHITECTURE.md's layer contract (import-linter) on it.

The layers' folders live at the repository root and are mapped into ``polyfact`` by
``pyproject.toml``; import-linter walks a package's own folder, so the contract is checked on a copy
laid out as it installs (``polyfact/core``, ``polyfact/interp``, …)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _installed_layout(dest: Path) -> Path:
    """The package as a wheel lays it out, under ``dest``."""
    mapped = CONFIG["package-dir"]
    for name in CONFIG["packages"]:
        parent = next((k for k in sorted(mapped, key=len, reverse=True) if name == k or name.startswith(k + ".")), None)
        src = ROOT / (mapped[parent] + name[len(parent):].replace(".", "/") if parent else name.replace(".", "/"))
        target = dest / name.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.py"):
            shutil.copy2(f, target / f.name)
    return dest


def test_every_package_folder_is_installed_and_nothing_else():
    """Every folder with an __init__.py under the mapped layers is listed in pyproject's packages,
    and only ``polyfact`` is a top-level name (no ``core`` or ``training`` to shadow a user's folder)."""
    mapped = CONFIG["package-dir"]
    listed = set(CONFIG["packages"])
    found = {"polyfact"}
    for name, folder in [*mapped.items(), ("polyfact.data", "polyfact/data")]:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found == listed, (found ^ listed)
    assert {p.split(".")[0] for p in listed} == {"polyfact"}


def test_layers_contract_holds(tmp_path):
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    where = _installed_layout(tmp_path / "site")
    r = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=where, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout, r.stdout
    # the contracts can fail: evaluation that imports a trainer breaks the third
    scoring = where / "polyfact" / "training" / "evaluation" / "scoring.py"
    scoring.write_text(scoring.read_text() + "\nfrom polyfact.training.grpo import grpo  # noqa\n")
    r = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=where, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)})
    assert r.returncode != 0 and "Contracts: 2 kept, 1 broken." in r.stdout, r.stdout
