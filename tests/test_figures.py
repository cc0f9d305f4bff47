"""Figures from small result fixtures (traces, axes, language order), static export, the report
in headless Chromium, the released-LAPE figures and the notebook."""

from __future__ import annotations

import re
import subprocess
import tempfile

import pytest

from polyfact.core.results import Recall
from polyfact.figures import builders as B
from polyfact.figures.export import chromium_path, write_static
from polyfact.figures.report import paper_lape_figures
from polyfact.core.errors import PolyFactError
from tests.conftest import ROOT, shared

LANGS_SHUFFLED = ["ko", "zh", "en", "sw", "de"]
ORDER = ["en", "de", "sw", "zh", "ko"]


def recall_fixture(ckpt: str, shift: float = 0.0) -> Recall:
    acc = {lang: 0.5 + shift + 0.05 * i for i, lang in enumerate(LANGS_SHUFFLED)}
    mat = {a: {b: 1.0 if a == b else 0.4 for b in LANGS_SHUFFLED} for a in LANGS_SHUFFLED}
    return Recall({"checkpoint": ckpt, "metrics": {
        "accuracy": acc, "accuracy_by_group": {"high": 0.6 + shift, "low": 0.5, "heldout": 0.3},
        "total_consistency": 0.2 + shift, "agreement": mat, "coverlap": mat, "rankc": mat,
        "languages": LANGS_SHUFFLED, "mean_accuracy": 0.6},
        "intervals": {"accuracy": {lang: {"value": v, "ci": [v - 0.1, v + 0.1]} for lang, v in acc.items()},
                      "total_consistency": {"value": 0.2 + shift, "ci": [0.1 + shift, 0.3 + shift]}},
        "consistency_subsets": {"training": 0.3 + shift}})


def test_recall_figures_content_and_language_order():
    recall = {"base": recall_fixture("base"), "grpo": recall_fixture("grpo", 0.1)}
    fig = B.recall_by_language(recall)
    assert [t.name for t in fig.data] == ["base", "grpo"]
    assert list(fig.data[0].x) == ORDER  # the study's order, not the input's
    assert fig.data[1].y[0] == pytest.approx(0.5 + 0.1 + 0.05 * 2)  # en of grpo
    assert fig.data[0].error_y.array[0] == pytest.approx(0.1)
    assert fig.layout.yaxis.title.text.startswith("accuracy") and fig.layout.xaxis.title.text == "language"
    groups = B.recall_by_group(recall)
    assert list(groups.data[0].x) == ["high-resource (seen)", "low-resource (seen)", "held-out (unseen)"]
    tc = B.total_consistency(recall)
    assert [t.name for t in tc.data] == ["all languages", "training languages"]
    assert list(tc.data[0].y) == pytest.approx([0.2, 0.3])
    heat = B.consistency_heatmaps(recall, "rankc")
    assert len(heat.data) == 2 and list(heat.data[0].x) == ORDER and heat.data[0].z[0][0] == 1.0


def test_neuron_head_and_routing_figures():
    per_layer = {"zh": [1, 2, 3], "en": [0, 1, 0], "ko": [5, 0, 0]}
    fig = B.lape_per_layer(per_layer, "t")
    assert list(fig.data[0].y) == ["en", "zh", "ko"] and fig.data[0].z[2] == [5, 0, 0]
    change = B.lape_change({"en": [1, 1, 1]}, {"en": [0, 2, 1]}, "c")
    assert change.data[0].z == ([1, -1, 0],) or list(change.data[0].z[0]) == [1, -1, 0]
    assert change.data[0].zmid == 0
    heads = {"checkpoint": "base", "method": "gradient", "languages": ["en", "de"], "n_layers": 2, "n_heads": 2,
             "k": 1, "importance": [[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]],
             "layer_distribution": {"de": [0, 1], "en": [1, 0]}, "overlap": {"en": {"en": 1, "de": 0},
                                                                              "de": {"en": 0, "de": 1}},
             "entropy_by_head": [[0.0, 0.0], [1.0, 1.0]]}
    ent = B.head_importance_heatmap(heads)  # drawn from the result, never computed here
    assert ent.data[0].z[1][0] == pytest.approx(1.0) and ent.data[0].z[0][0] == pytest.approx(0.0)
    assert list(B.top_heads_by_layer(heads).data[0].y) == ["en", "de"]
    ablate = {"checkpoint": "base", "neurons": {"loss": {"en": {"en": 0.5, "de": 0.0}, "de": {"en": 0.1, "de": 0.3}},
                                                "loss_dominance": {"margin": 0.35, "share": 1.0}},
              "neurons_control": {"loss": {"en": {"en": 0.0, "de": 0.0}, "de": {"en": 0.0, "de": 0.01}}}}
    deact = B.deactivation_matrix(ablate, "neurons")
    assert len(deact.data) == 2 and "100%" in deact.layout.title.text
    reps = {"base": {"n_layers": 3, "cka_all_pairs": [0.1, 0.5, 0.9], "checkpoint": "base"}}
    assert list(B.representation_curves(reps).data[0].y) == [0.1, 0.5, 0.9]


def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        extrema = im.convert("L").getextrema()
        return im.size, extrema


def test_static_png_export_is_a_non_blank_image_of_the_requested_size(tmp_path):
    if chromium_path() is None:
        pytest.skip("no Chromium/Chrome: static export needs one (apt-get install -y chromium)")
    fig = B.recall_by_language({"base": recall_fixture("base")})
    out = write_static(fig, tmp_path / "recall.png", width=640, height=360)
    size, (lo, hi) = _png_size(out)
    assert size == (640, 360) and hi - lo > 100  # not a blank image
    pdf = write_static(fig, tmp_path / "recall.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(PolyFactError, match="static export writes"):
        write_static(fig, tmp_path / "x.gif")


def test_released_lape_figures(tmp_path):
    from polyfact.analyses.paper.released import released_lape

    summary = released_lape(shared("paper-lape", "qwen-base"), shared("paper-lape", "qwen-grpo"))
    written = paper_lape_figures(summary, tmp_path, static=False)  # static export: its own test above
    html = (tmp_path / "lape.html").read_text()
    assert written == [tmp_path / "lape.html"]
    assert html.count("<script") >= 2 and "plotly" in html.lower()
    assert html.lower().count("plotly.js v") <= 2  # plotly.js embedded once


def test_released_head_figures_through_the_cli(tmp_path):
    """polyfact figures heads on the study's released OLMo base LAHIS tables (and against itself:
    a zero change)."""
    from tests.helpers import cli

    folder = shared("paper-lahis", "olmo-base")
    r = cli("figures", "heads", "--paper-dir", folder, "--compare", folder, "--out", tmp_path / "figs", "--no-static")
    assert r.returncode == 0, r.stderr[-2000:]
    html = (tmp_path / "figs" / "heads.html").read_text()
    assert html.count("class=\"plotly-graph-div\"") == 6 or html.count("plotly-graph-div") >= 6
    assert "Top 2% heads per language by layer" in html and "Overlap of top-head sets" in html
    assert "Change in head overlap" in html and "mean +0.0 points" in html
    r = cli("figures", "heads", "--paper-dir", tmp_path, "--out", tmp_path / "x")
    assert r.returncode == 2 and "no lahis_<lang>.pth files" in r.stderr and "Traceback" not in r.stderr


def test_report_renders_every_figure_in_headless_chromium(smoke_study):
    run, _ = smoke_study
    chrome = chromium_path()
    if chrome is None:
        pytest.skip("no Chromium/Chrome to load the report (apt-get install -y chromium)")
    report = run / "report.html"
    n_figures = report.read_text().count("class='figure'")
    assert n_figures >= 15
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                            "--virtual-time-budget=15000", "--dump-dom", report.as_uri()],
                           capture_output=True, text=True, timeout=180)
    dom = r.stdout
    rendered = len(re.findall(r'<div id="fig-[^"]+" class="plotly-graph-div[^"]*js-plotly-plot', dom))
    assert rendered == n_figures, f"{rendered} of {n_figures} figures rendered"
    console_errors = [line for line in r.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]
    assert not console_errors, console_errors[:3]


def test_notebook_runs_top_to_bottom(smoke_study, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    run, _ = smoke_study
    monkeypatch.setenv("POLYFACT_RUN", str(run))  # the kernel inherits it; later tests do not
    nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
                   ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if "Plotly.newPlot" in str(o.get("data", {}).get("text/html", ""))]
    assert len(figures) >= 8  # recall, consistency, entropy, LAPE, one neuron, logit lens, comparison, specialize
    assert any("max_abs_diff" in str(o.get("text", "")) for o in outputs)  # the hook check of an outside model
