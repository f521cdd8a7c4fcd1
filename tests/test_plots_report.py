"""jaxlasso.plots and jaxlasso.report: figures, deterministic files, the HTML report.

One shared :func:`select_features` run (simulated counts, 16 samples x 300 genes, strategy
"full") feeds every test. Its strongest differentially expressed gene is renamed to a script
tag and the class labels carry ``&``, quotes and markup, so every figure and the page are
exercised with hostile names. The browser test renders the page with Debian's headless chromium.
"""

from __future__ import annotations

import base64
import html
import math
import os
import shutil
import struct
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from jaxlasso import plots  # noqa: E402
from jaxlasso import report as jreport  # noqa: E402

MALICIOUS = "<script>alert(1)</script>"
CONTROL = 'ctl & "A"'
CASE = "<b>case</b> 'x'"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_report():
    from jaxlasso.simulate import simulate_rnaseq
    from jaxlasso.workflow import select_features

    from jaxlasso.selection.filters import preprocess, t_filter

    sim = simulate_rnaseq(n_genes=300, seed=0)
    # The gene with the largest |t| after the default preprocessing: it appears in every ranking,
    # figure and table, so its hostile name is checked everywhere.
    X, _ = preprocess(sim.counts)
    strongest = X.columns[t_filter(X.to_numpy(), (sim.y.loc[X.index] == "case").to_numpy(), 1)[0]]
    counts = sim.counts.rename(columns={strongest: MALICIOUS})
    y = sim.y.map({"control": CONTROL, "case": CASE})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # One CV split (not the default 10 repeats at n = 16): on this seed the lasso then keeps
        # genes at lambda.1se, so every section of the report has content to render.
        rep = select_features(counts, y, strategy="full", n_permutations=19, stability=20, seed=0, n_repeats=1)
    assert rep.classes == (CASE, CONTROL)
    return rep


@pytest.fixture(scope="module")
def pngs(sim_report):
    return {key: plots.figure_png(fig, close=True) for key, fig in plots.all_figures(sim_report).items()}


def _labels(ticklabels):
    return [t.get_text() for t in ticklabels]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    return struct.unpack(">II", data[16:24])


# --- figures -----------------------------------------------------------------------------------
def test_path_figure(sim_report):
    path = sim_report.cv.path
    fig = plots.path_figure(path, max_labels=10)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Log Lambda" and ax.get_ylabel() == "Coefficients"
    x = np.log(path.lambdas)
    active = np.nonzero(np.any(path.coef != 0, axis=0))[0]
    lines = [ln for ln in ax.lines if str(ln.get_gid()).startswith("path-")]
    assert len(lines) == len(active) > 0
    np.testing.assert_allclose(lines[0].get_xdata(), x)
    # glmnet: log(lambda) increasing left to right, the labels sit left of the smallest lambda.
    lo, hi = ax.get_xlim()
    assert lo < x.min() and hi == pytest.approx(x.max())
    final = path.coef[np.argmin(x)]
    texts = [t for t in ax.texts if t.get_gid() == "path-label"]
    assert len(texts) == min(10, np.count_nonzero(final))
    biggest = path.names()[int(np.argmax(np.abs(final)))]
    assert biggest in {t.get_text() for t in texts}
    assert len([t for t in plots.path_figure(path, max_labels=2).axes[0].texts
                if t.get_gid() == "path-label"]) == 2
    # Top axis: the number of nonzero coefficients at the tick positions (decreasing to the right).
    top = ax.child_axes[0]
    df = [int(s) for s in _labels(top.get_xticklabels())]
    assert df and df == sorted(df, reverse=True)
    assert max(df) <= path.n_nonzero.max() and min(df) >= 0


def test_path_figure_without_active_features():
    path = SimpleNamespace(lambdas=np.array([0.5, 0.25]), coef=np.zeros((2, 3)),
                           n_nonzero=np.array([0, 0]), names=lambda: ["a", "b", "c"])
    ax = plots.path_figure(path).axes[0]
    assert "no coefficient enters the path" in [t.get_text() for t in ax.texts]
    assert not [ln for ln in ax.lines if str(ln.get_gid()).startswith("path-")]
    one = SimpleNamespace(lambdas=np.array([0.5]), coef=np.array([[0.0, 1.5, -2.0]]),
                          n_nonzero=np.array([2]), names=lambda: ["a", "b", "c"])
    texts = [t.get_text() for t in plots.path_figure(one).axes[0].texts if t.get_gid() == "path-label"]
    assert texts == ["c", "b"]


def test_cv_figure(sim_report):
    cv = sim_report.cv
    fig = plots.cv_figure(cv)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Binomial Deviance"
    assert "Log" in ax.get_xlabel()
    vlines = {ln.get_gid(): ln for ln in ax.lines if ln.get_gid() in ("lambda.min", "lambda.1se")}
    assert set(vlines) == {"lambda.min", "lambda.1se"}
    np.testing.assert_allclose(vlines["lambda.min"].get_xdata(), [math.log(cv.lambda_min)] * 2)
    np.testing.assert_allclose(vlines["lambda.1se"].get_xdata(), [math.log(cv.lambda_1se)] * 2)
    assert all(ln.get_linestyle() == ":" for ln in vlines.values())
    # The intercept-only level (first lambda: no gene) is the line any signal must beat.
    (flat,) = [ln for ln in ax.lines if ln.get_gid() == "intercept-only"]
    np.testing.assert_allclose(flat.get_ydata(), [cv.cv_mean[0]] * 2)
    dots = next(c for c in ax.collections if c.get_gid() == "cv-mean")
    offsets = dots.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], np.log(cv.lambdas))
    np.testing.assert_allclose(offsets[:, 1], cv.cv_mean)
    np.testing.assert_allclose(dots.get_facecolor()[0][:3], [1.0, 0.0, 0.0])
    top = ax.child_axes[0]
    ticks = top.get_xticks()
    labels = [int(s) for s in _labels(top.get_xticklabels())]
    idx = [int(np.argmin(np.abs(np.log(cv.lambdas) - t))) for t in ticks]
    assert labels == [int(cv.n_nonzero[i]) for i in idx]


def test_coef_figure(sim_report):
    coefs = pd.Series({"up": 0.8, "down": -0.3, "tiny": 0.05, "$x$": -1.2})
    fig = plots.coef_figure(coefs, ("ctrl", "tumour"))
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 4
    widths = [b.get_width() for b in bars]
    assert widths == sorted(widths)                                  # sorted
    colours = {tuple(np.round(b.get_facecolor()[:3], 3)) for b in bars}
    assert len(colours) == 2                                         # coloured by sign
    assert "P(tumour)" in ax.get_xlabel()
    assert _labels(ax.get_yticklabels())[0] == r"\$x\$"              # no mathtext from user text
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)
    empty = plots.coef_figure(pd.Series(dtype=float), ("a", "b"))
    assert "no gene selected" in [t.get_text() for t in empty.axes[0].texts]
    real = plots.coef_figure(sim_report.coefficients, sim_report.classes)
    assert len(real.axes[0].patches) == len(sim_report.coefficients)


def test_stability_figure(sim_report):
    st = sim_report.stability
    fig = plots.stability_figure(st, top=5)
    ax = fig.axes[0]
    paths = [ln for ln in ax.lines if str(ln.get_gid()).startswith("stability-") and
             ln.get_gid() not in ("stability-cutoff", "stability-region-edge")]
    assert len(paths) == min(5, int(np.count_nonzero(st.max_probability > 0)))
    cutoff = next(ln for ln in ax.lines if ln.get_gid() == "stability-cutoff")
    np.testing.assert_allclose(cutoff.get_ydata(), [st.cutoff] * 2)
    edge = next(ln for ln in ax.lines if ln.get_gid() == "stability-region-edge")
    np.testing.assert_allclose(edge.get_xdata(), [math.log(st.lambdas[st.region_index])] * 2)
    assert any(p.get_gid() == "stability-region" for p in ax.patches)
    assert ax.get_ylabel() == "selection probability (max over the path so far)"
    # The curves are the quantity the table reports: each ends at the feature's maximum
    # selection probability over the region, and never exceeds it.
    table = st.to_frame().set_index("feature")["selection_probability"]
    for ln in paths:
        j = int(ln.get_gid().split("-")[1])
        y = np.asarray(ln.get_ydata(), dtype=float)
        assert len(y) == st.region_index + 1
        assert y[-1] == table[st.feature_names[j]] == st.max_probability[j]
        assert y.max() == pytest.approx(st.probabilities[: st.region_index + 1, j].max())
    assert f"of target {st.q_target:.3g}" in ax.get_title()
    top_name = st.feature_names[int(np.argmax(st.max_probability))]
    assert top_name in [t.get_text() for t in ax.get_legend().get_texts()]


def test_importance_figure():
    frame = pd.DataFrame({
        "feature": [f"g{i}" for i in range(30)],
        "decision": ["confirmed"] * 3 + ["tentative"] * 4 + ["rejected"] * 23,
        "median_importance": np.linspace(3.0, 0.1, 30),
        "rank": np.arange(1, 31),
    }).sample(frac=1.0, random_state=0)
    fig = plots.importance_figure(frame, value_column="median_importance", title="Boruta", top=10)
    ax = fig.axes[0]
    assert len(ax.patches) == 10
    labels = _labels(ax.get_yticklabels())
    assert labels[0] == "g0"                                         # rank 1 at the top
    assert set(labels) == {f"g{i}" for i in range(10)}
    assert ax.get_title() == "Boruta" and ax.get_xlabel() == "median_importance"
    assert len({tuple(p.get_facecolor()) for p in ax.patches}) == 3  # coloured by decision
    with pytest.raises(ValueError, match="value_column"):
        plots.importance_figure(frame, value_column="nope", title="x")


def test_permutation_figure(sim_report):
    perm = sim_report.diagnosis.permutation
    fig = plots.permutation_figure(perm)
    ax = fig.axes[0]
    assert f"p = {perm.p_value:.3g}" in ax.get_title()
    observed = next(ln for ln in ax.lines if ln.get_gid() == "observed")
    np.testing.assert_allclose(observed.get_xdata(), [perm.statistic] * 2)
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == len(perm.null_statistics)


def test_all_figures_and_deterministic_files(sim_report, tmp_path):
    first = plots.all_figures(sim_report)
    expected = {"path", "cv", "coefficients", "stability", "permutation", "forest", "univariate"}
    assert set(first) == expected and set(first) <= set(plots.FIGURE_KEYS)
    forest_ax = first["forest"].axes[0]
    assert MALICIOUS in _labels(forest_ax.get_yticklabels())
    second = plots.all_figures(sim_report)
    for key in first:
        a = plots.save_figure(first[key], tmp_path / "a", key)
        b = plots.save_figure(second[key], tmp_path / "b", key)
        assert [p.name for p in a] == [f"{key}.png", f"{key}.svg"]
        for pa, pb in zip(a, b):
            assert pa.stat().st_size > 1000
            assert pa.read_bytes() == pb.read_bytes(), f"{pa.name} differs between two identical calls"
        assert a[0].read_bytes().startswith(PNG_SIGNATURE)
        assert b"<svg" in a[1].read_bytes()
        assert b"<dc:date>" not in a[1].read_bytes()


# --- the HTML report ---------------------------------------------------------------------------
def _section_positions(page: str, ids) -> list[int]:
    return [page.index(f'id="{i}"') for i in ids]


def test_render_html_real_report(sim_report, pngs):
    page = jreport.render_html(sim_report, figures=pngs, summary={"input": "counts & more.csv"})
    assert page.startswith("<!DOCTYPE html>")
    assert html.escape(sim_report.verdict, quote=True) in page
    n = len(sim_report.selected)
    assert n > 0
    headline = f"{n} gene{'s' if n != 1 else ''} at lambda.1se"
    assert headline in page
    decision = {True: "Predictive signal detected", False: "No predictive signal detectable"}
    assert decision[sim_report.signal_detected] in page
    assert html.escape(sim_report.gene_list_description, quote=True) in page
    # The verdict box names critical findings and does not repeat the diagnosis' messages.
    box = page[page.index('id="verdict"'):page.index('id="summary"')]
    for f in sim_report.diagnosis.findings:
        assert html.escape(f.message, quote=True) not in box
        if f.severity == "critical" and f.code != "NO_SIGNAL":
            assert f.code in box
    for code in sim_report.diagnosis.codes():
        assert code in page
    assert page.count('<img src="data:image/png;base64,') == len(pngs)
    for step in sim_report.preprocess.steps:
        assert html.escape(step, quote=True) in page
    assert f"{sim_report.cv.lambda_min:.4g}" in page and f"{sim_report.cv.lambda_1se:.4g}" in page
    order = ["verdict", "summary", "diagnosis", "preprocessing", "genes", "cv", "figures", "methods",
             "rank-then-lasso"]
    pos = _section_positions(page, order)
    assert pos == sorted(pos)
    assert page.index("<footer>") > pos[-1]
    assert f"Seed {sim_report.seed}" in page
    # Hostile names: escaped everywhere, never raw.
    assert "<script" not in page.lower()
    assert html.escape(MALICIOUS, quote=True) in page
    assert html.escape(CASE, quote=True) in page and html.escape(CONTROL, quote=True) in page
    assert CASE not in page and CONTROL not in page
    assert "counts &amp; more.csv" in page
    # No external resources.
    for marker in ('src="http', "href=", "url(", "@import", "<link"):
        assert marker not in page
    # Embedded images are the given PNGs.
    for data in pngs.values():
        assert base64.b64encode(data).decode("ascii") in page


def _hostile_report():
    ev = {MALICIOUS: f"x{MALICIOUS}", "n": 3}
    findings = (
        SimpleNamespace(code="NO_SIGNAL", severity="critical", message=f"gene {MALICIOUS} & co",
                        evidence=ev, action=f"drop {MALICIOUS}"),
        SimpleNamespace(code=MALICIOUS, severity=MALICIOUS, message="m", evidence={}, action=""),
    )
    table = pd.DataFrame({"feature": [MALICIOUS, "g&2"], MALICIOUS: [1.0, np.nan],
                          "lasso_selected": [False, False]})
    rtl = SimpleNamespace(ranker=MALICIOUS, top_k=30, measure="deviance", optimism=0.4,
                          to_frame=lambda: pd.DataFrame({"estimate": [MALICIOUS], "cv_mean": [1.0]}))
    return SimpleNamespace(
        verdict=f"No gene selected: {MALICIOUS}", signal_detected=False, selected=(),
        gene_list_description=f"selected by {MALICIOUS}",
        lambda_min_coefficients=pd.Series([1.0], index=[MALICIOUS]),
        coefficients=pd.Series(dtype=float), rule="lambda_1se", lambda_=0.1, classes=(CASE, CONTROL),
        preprocess=SimpleNamespace(steps=(f"renamed {MALICIOUS}",)), cv=None,
        diagnosis=SimpleNamespace(findings=findings, no_signal=True, permutation=None),
        stability=None, univariate=None, forest=None, boruta=None, rank_then_lasso=rtl,
        seed=MALICIOUS, timings={"total": 1.5, MALICIOUS: 0.5}, table=lambda: table,
    )


def test_render_html_escapes_every_input_string():
    png = plots.figure_png(plots.coef_figure(pd.Series(dtype=float), ("a", "b")), close=True)
    page = jreport.render_html(_hostile_report(), figures={MALICIOUS: png}, title=MALICIOUS,
                               summary={MALICIOUS: MALICIOUS})
    assert "<script" not in page.lower()
    assert "<b>" not in page and CONTROL not in page
    assert "No predictive signal detectable — no gene at lambda.1se (1 exploratory at lambda.min)" in page
    # (no permutation_p on this report: the headline quotes none)
    assert page.count(html.escape(MALICIOUS, quote=True)) >= 12
    assert 'class="finding critical"' in page and 'class="finding info"' in page  # unknown severity
    assert page.count('<img src="data:image/png;base64,') == 1


def test_render_html_rejects_non_png(sim_report):
    with pytest.raises(ValueError, match="PNG"):
        jreport.render_html(sim_report, figures={"cv": b"GIF89a not a png at all......"})


def test_write_report_atomic(tmp_path):
    target = tmp_path / "out" / "report.html"
    assert jreport.write_report(target, "<p>one</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>one</p>"
    os.chmod(target, 0o640)
    jreport.write_report(target, "<p>two — ü</p>")
    assert target.read_text(encoding="utf-8") == "<p>two — ü</p>"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]   # no temp file left


# --- the page in a real browser ----------------------------------------------------------------
class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "script":
            self.scripts += 1


def _chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp)


def _screenshot(exe: str, tmp: Path, page: Path, name: str, size: str) -> np.ndarray:
    import matplotlib.image as mpimg

    shot = tmp / name
    proc = _chromium(exe, tmp, f"--screenshot={shot}", f"--window-size={size}",
                     "--virtual-time-budget=2000", page.as_uri())
    assert shot.exists(), f"chromium wrote no screenshot (rc={proc.returncode}): {proc.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    return mpimg.imread(shot)


@pytest.mark.browser
def test_report_in_headless_chromium(sim_report, pngs, tmp_path):
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    page = jreport.write_report(tmp_path / "report.html", jreport.render_html(sim_report, figures=pngs))

    pixels = _screenshot(exe, tmp_path, page, "shot.png", "1200,3000")
    assert pixels.shape[:2] == (3000, 1200)
    assert float(pixels[..., :3].var()) > 1e-3                       # not a blank page

    proc = _chromium(exe, tmp_path, "--dump-dom", "--virtual-time-budget=2000", page.as_uri())
    dom = proc.stdout
    assert "</html>" in dom, f"chromium dumped no DOM (rc={proc.returncode}): {proc.stderr[-2000:]}"
    n = len(sim_report.selected)
    assert f"{n} gene{'s' if n != 1 else ''} selected" in dom
    assert html.escape(MALICIOUS, quote=False) in dom and "<script" not in dom.lower()
    parser = _Images()
    parser.feed(dom)
    assert parser.scripts == 0
    assert len(parser.images) == len(pngs)
    for img in parser.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        w, h = _png_size(data)
        assert w > 0 and h > 0 and (int(img["width"]), int(img["height"])) == (w, h)

    # The browser really decodes the embedded images (the CSP allows data: images): a page with
    # only the CV figure shows its pure-red dots.
    cv_page = jreport.write_report(tmp_path / "cv.html",
                                   jreport.render_html(sim_report, figures={"cv": pngs["cv"]}))
    cv_pixels = _screenshot(exe, tmp_path, cv_page, "cv.png", "1200,6000")
    rgb = cv_pixels[..., :3]
    red = (rgb[..., 0] > 0.9) & (rgb[..., 1] < 0.15) & (rgb[..., 2] < 0.15)
    assert int(red.sum()) > 200
