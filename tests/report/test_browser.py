"""Headless Chromium renders the report: no JavaScript errors, figures with pixels.

Needs Debian's ``chromium`` (installed by ``.ci/run``); skipped with the reason otherwise.
The screenshot of the Snakemake report is kept as a CI artifact at
``results/test_artifacts/report_screenshot.png`` (and ``report_gallery_screenshot.png`` for the
standalone page).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from report_data import make_paths_json, make_records

from greenpath.report.browser import (
    colour_count,
    console_errors,
    dom_errors,
    find_chromium,
    instrument_html,
    nonblank_fraction,
    open_result_js,
    render,
)
from greenpath.report.tables import strategy_items

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "results" / "test_artifacts"
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium absent: install Debian's 'chromium' (apt-get install chromium; .ci/run does)",
)


# ------------------------------------------------------------------ no browser needed


def test_nonblank_fraction_and_colours(tmp_path):
    img = np.ones((10, 20, 3))
    img[:, :5] = 0.0  # a quarter black
    img[0, 10] = [0.2, 0.4, 0.6]
    p = tmp_path / "x.png"
    mpimg.imsave(p, img)
    assert nonblank_fraction(p) == pytest.approx(0.25 + 1 / 200)
    assert colour_count(p) == 3
    assert colour_count(p, box=(10, 1, 20, 10)) == 1


def test_error_parsing():
    dom = '<body><pre id="greenpath-js-errors" style="display: none;">error: boom\nerror: b</pre>'
    assert dom_errors(dom) == ["error: boom", "error: b"]
    assert dom_errors('<pre id="greenpath-js-errors"></pre>') == []
    log = (
        '[1:2:INFO:CONSOLE(3)] "Uncaught ReferenceError: foo is not defined", source: x (3)\n'
        "[1:2:WARNING:other] Uncaught but not a console line\n"
    )
    assert console_errors(log) == ['Uncaught ReferenceError: foo is not defined", source: x (3)']


def test_instrument_html_injects_hook_first(tmp_path):
    src = tmp_path / "a.html"
    src.write_text("<html><head><title>t</title></head><body>x</body></html>")
    out = instrument_html(src, tmp_path / "b.html", extra_js="app.go();")
    text = out.read_text()
    assert text.index("greenpath-js-errors") < text.index("<title>")
    assert "app.go();" in text
    assert "results" in open_result_js("energy_accuracy")


def test_render_without_chromium_says_how_to_install(tmp_path, monkeypatch):
    from greenpath.report import browser

    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    with pytest.raises(browser.ChromiumMissing, match="apt-get install chromium"):
        browser.render(tmp_path / "x.html")


# -------------------------------------------------------------------- with Chromium


@needs_chromium
@pytest.mark.slow
def test_chromium_reports_a_javascript_error(tmp_path):
    """The check can fail: a page with a broken script is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<html><head></head><body><p>hi</p><script>nosuch();</script></body></html>")
    res = render(page, window_size=(400, 300))
    assert any("nosuch" in e for e in res.js_errors), res.js_errors


@needs_chromium
@pytest.mark.slow
def test_gallery_page_renders_with_figures(tmp_path):
    from greenpath.records import build_trajectories
    from greenpath.report.build import build_study_report

    rec = make_records(datasets=("alpha",), seeds=(0, 1))
    build_study_report(
        rec,
        tmp_path / "toy",
        trajectories=build_trajectories(rec, stop_epochs=[2]),
        paths_json=make_paths_json(rec),
    )
    shot = tmp_path / "gallery.png"
    res = render(tmp_path / "toy" / "index.html", shot, window_size=(1000, 1400))
    assert res.js_errors == []
    assert "data:image/png;base64," in res.dom
    # the first figure (learning curves) fills the top of the page: many colours, ink
    assert nonblank_fraction(shot) > 0.05
    assert colour_count(shot, box=(0, 80, 1000, 600)) > 30
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report_gallery_screenshot.png")


SNAKEFILE = """\
import sys
sys.path.insert(0, {src!r})

configfile: "config.yaml"

RESULTS = "results"
DATASETS = list(config["datasets"])
INTERVENTIONS = [int(k) for k in config["interventions"]["epochs"]]
METHODS = list(config["interventions"]["methods"])
MODEL_STUDIES = {{config["study"]: ("results/records.parquet", [])}}

include: {functions!r}
include: {smk!r}

rule all:
    input:
        report_targets(),
"""

CONFIG = """\
study: toy
datasets: {alpha: {}, beta: {}}
training: {epochs: 4}
seeds: [0, 1]
interventions: {epochs: [0, 2], methods: [freeze, quant, stop]}
"""


@needs_chromium
@pytest.mark.slow
def test_snakemake_report_renders_in_chromium(tmp_path):
    """The real `snakemake --report` of a tiny workflow that includes report.smk."""
    from greenpath.records import build_trajectories, write_records
    from greenpath.records.aggregate import write_trajectories

    (tmp_path / "Snakefile").write_text(
        SNAKEFILE.format(
            src=str(REPO / "src"),
            functions=str(REPO / "workflow/rules/report_functions.smk"),
            smk=str(REPO / "workflow/rules/report.smk"),
        )
    )
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    rec = make_records()
    write_records(rec, tmp_path / "results/records.parquet")
    write_trajectories(
        build_trajectories(rec, stop_epochs=[2]), tmp_path / "results/toy/trajectories.parquet"
    )
    smk = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(tmp_path / "Snakefile"),
    ]
    run = subprocess.run(smk, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for kind in ("learning_curves", "energy_accuracy", "energy_breakdown"):
        assert sorted(p.name for p in (tmp_path / f"results/toy/report/{kind}").glob("*.png")) == [
            "alpha.png",
            "beta.png",
        ]
    html = tmp_path / "results/report.html"
    run = subprocess.run([*smk, "--report", str(html)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    # every figure is in the report: 3 per dataset x 2 datasets + predictions + summary,
    # the headline and the per-dataset table
    log = run.stderr + run.stdout
    assert log.count("Adding ") == 10, log[-2000:]

    start = render(html, window_size=(1400, 1000))
    assert start.js_errors == [], start.js_errors
    assert "Snakemake" in start.dom and "Results" in start.dom
    # the start page opens with the study's headline (no paths stage here: it says so)
    assert 'id="headline-toy"' in start.dom
    assert start.dom.index('id="headline-toy"') < start.dom.index("How this report was made")
    assert "No paths output for this study yet" in start.dom

    shot = tmp_path / "report.png"
    res = render(html, shot, window_size=(1400, 1000), extra_js=open_result_js("energy_accuracy"))
    assert res.js_errors == [], res.js_errors
    # the figure occupies the right of the navbar (x > 300): many colours, ink
    fig_box = (300, 250, 1400, 750)
    assert colour_count(shot, box=fig_box) > 30
    # ink in the figure area (axes, lines, text); a blank area is 0. The whole page's share
    # varies with the report's layout (navbar collapsed or not), so it is not asserted.
    assert nonblank_fraction(shot, box=fig_box) > 0.02
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report_screenshot.png")


# ------------------------------------------------------- the default run's own report

#: JavaScript run after load: the position of every headline and its table on the page.
_HEADLINE_BOX_JS = (
    "var out=[];document.querySelectorAll('section.greenpath-headline').forEach(function(s){"
    "var t=s.querySelector('table');var r=(t||s).getBoundingClientRect();"
    "out.push(s.id+':'+Math.round(s.getBoundingClientRect().top)+':'+Math.round(r.bottom));});"
    "var pre=document.createElement('pre');pre.id='greenpath-headline-boxes';"
    "pre.textContent=out.join(' ')+' viewport:'+window.innerHeight;document.body.appendChild(pre);"
)


def _headline_cells(dom: str, study: str) -> dict[tuple[str, str], float]:
    m = re.search(rf'<section[^>]*id="headline-{study}".*?</section>', dom, flags=re.DOTALL)
    assert m, f"no headline of study {study} in the report"
    cells = {}
    for row in re.finditer(r'<tr data-strategy="([^"]+)">(.*?)</tr>', m.group(0), re.DOTALL):
        for field, value in re.findall(r'data-field="(\w+)" data-value="([^"]+)"', row.group(2)):
            cells[(row.group(1), field)] = float(value)
    return cells


@needs_chromium
@pytest.mark.slow
def test_default_run_report_opens_with_the_headline_of_its_paths_output():
    """After `snakemake --cores N` and `snakemake --report results/report.html`: the report's
    first screen shows each study's headline, with the figures of the same run's paths
    output (``results/<study>/paths.json``, ``pooled.all``; fixed stops at the trees' decision
    epochs, as the report shows them)."""
    report = REPO / "results" / "report.html"
    paths = sorted((REPO / "results").glob("*/paths.json"))
    if not report.is_file() or not paths:
        pytest.skip("no default run here: run the workflow, then --report results/report.html")
    if report.stat().st_mtime < max(p.stat().st_mtime for p in paths):
        pytest.skip("results/report.html is older than the paths output: build it again")
    res = render(report, window_size=(1400, 1000), extra_js=_HEADLINE_BOX_JS)
    assert res.js_errors == [], res.js_errors
    fields = {
        "energy_saved_pct": "energy_saved_pct_mean",
        "accuracy_change_pts": "accuracy_change_pts_mean",
        "violations": "violations",
        "regret": "regret_mean",
    }
    for p in paths:
        doc = json.loads(p.read_text())
        study = p.parent.name
        cells = _headline_cells(res.dom, study)
        checked = 0
        for name, s in strategy_items(doc):
            pooled = s["pooled"]["all"]
            for field, key in fields.items():
                if name != "full_trunk" and pooled.get(key) is not None:
                    assert cells[(name, field)] == pooled[key], (study, name, field)
                    checked += 1
        assert checked >= 8, (study, checked)
    # no internal words in what the page shows (scripts left out: Snakemake's bundled Vega
    # library has a comment "explicit target set")
    shown = re.sub(r"<(script|style)\b.*?</\1>", "", res.dom, flags=re.DOTALL | re.IGNORECASE)
    for word in ("Issue", "issue 4", "target set"):
        assert word not in shown, word
    # the first study's headline table ends within the first screen
    boxes = re.search(r'<pre id="greenpath-headline-boxes">(.*?)</pre>', res.dom).group(1)
    first = boxes.split()[0].split(":")
    viewport = int(boxes.rsplit("viewport:", 1)[1])
    assert 0 <= int(first[1]) and int(first[2]) <= viewport, boxes
