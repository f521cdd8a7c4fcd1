"""Figures for the gene-selection workflow, in the style of R glmnet's plots.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (the figure
is attached to an Agg canvas directly), so nothing here touches the global backend, opens a
window or needs a display; :func:`save_figure` writes PNG and SVG files that are byte-identical
for identical inputs. matplotlib is imported lazily: ``pip install jaxlasso[plots]``.

==========================  ==================================================================
:func:`path_figure`         coefficient paths vs log(lambda) (``plot(fit, xvar="lambda")``)
:func:`cv_figure`           the cross-validation curve (``plot(cv.glmnet)``)
:func:`coef_figure`         the selected genes' coefficients
:func:`stability_figure`    stability paths with the cutoff and the lambda region
:func:`importance_figure`   a ranking (random forest, Boruta, univariate tests)
:func:`permutation_figure`  the label-permutation null distribution
:func:`all_figures`         every figure that applies to a :class:`~jaxlasso.workflow.SelectionReport`
==========================  ==================================================================
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "path_figure", "cv_figure", "coef_figure", "stability_figure", "importance_figure",
    "permutation_figure", "all_figures", "save_figure", "figure_png", "FIGURE_KEYS",
]

FIGURE_KEYS = ("path", "cv", "coefficients", "stability", "permutation", "forest", "boruta", "univariate")
"""The keys of :func:`all_figures`, in report order."""

DPI = 120
SVG_HASHSALT = "jaxlasso"

# glmnet's plot colours cycle through 1:6 (black, red, green3, blue, cyan, magenta); we use the
# colour-blind-safer tab10 cycle instead.
_POS, _NEG = "#b2182b", "#2166ac"
_DECISION_COLOURS = {"confirmed": "#1b7837", "tentative": "#e08214", "rejected": "#9e9e9e"}


# --- helpers -----------------------------------------------------------------------------------
def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("jaxlasso's figures need matplotlib: pip install 'jaxlasso[plots]'") from exc


def _new_figure(width: float = 7.0, height: float = 5.0) -> Figure:
    """A Figure on an Agg canvas (no pyplot, no global backend change)."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _txt(value: Any) -> str:
    """User text for matplotlib: ``$`` would start mathtext, so it is escaped."""
    return str(value).replace("$", r"\$")


def _log(lambdas: Any) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(lam)
    if np.any(~np.isfinite(out)):
        raise ValueError("lambdas must be positive and finite to plot against log(lambda) "
                         f"(got min={np.nanmin(lam) if lam.size else 'empty'})")
    return out


def _empty_message(fig, text: str):
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    return ax


def _df_at(index: np.ndarray, df: np.ndarray, at: np.ndarray, f: float) -> np.ndarray:
    """R's ``approx(index, df, xout=at, method="constant", f=f, rule=2)``."""
    order = np.argsort(index, kind="stable")
    x, y = index[order], np.asarray(df)[order]
    out = np.empty(len(at), dtype=float)
    for k, t in enumerate(at):
        if t <= x[0]:
            out[k] = y[0]
        elif t >= x[-1]:
            out[k] = y[-1]
        else:
            i = int(np.searchsorted(x, t, side="right"))  # x[i-1] <= t < x[i]
            if x[i - 1] == t:
                out[k] = y[i - 1]
            else:
                out[k] = (1 - f) * y[i - 1] + f * y[i]
    return out


def _spread(y: np.ndarray, gap: float) -> np.ndarray:
    """Label positions near ``y`` at least ``gap`` apart (order kept, mean shift removed)."""
    y = np.asarray(y, dtype=float)
    order = np.argsort(y, kind="stable")
    pos = y[order].copy()
    for i in range(1, len(pos)):
        pos[i] = max(pos[i], pos[i - 1] + gap)
    pos -= (pos - y[order]).mean()
    out = np.empty_like(pos)
    out[order] = pos
    return out


def _top_df_axis(ax, index: np.ndarray, df: np.ndarray, *, at: np.ndarray | None = None,
                 f: float = 1.0, span: tuple[float, float] | None = None):
    """glmnet's top axis: the number of nonzero coefficients at tick positions."""
    top = ax.secondary_xaxis("top")
    if at is None:
        lo, hi = span if span is not None else ax.get_xlim()
        at = np.asarray([t for t in ax.get_xticks() if min(lo, hi) - 1e-12 <= t <= max(lo, hi) + 1e-12])
        labels = _df_at(index, df, at, f)
    else:
        labels = np.asarray(df, dtype=float)
    top.set_xticks(at)
    top.set_xticklabels([str(int(round(v))) for v in labels])
    top.set_xlabel("number of nonzero coefficients")
    return top


# --- glmnet's plots ----------------------------------------------------------------------------
def path_figure(path, *, max_labels: int = 10) -> Figure:
    """Coefficient paths against log(lambda), as R's ``plot(fit, xvar="lambda", label=TRUE)``.

    The x axis is log(lambda) increasing left to right (the sparse end is on the right), the
    top axis shows the number of nonzero coefficients at the tick positions, and the
    ``max_labels`` largest coefficients at the end of the path (smallest lambda) are labelled.
    Features that never enter the path are not drawn (glmnet draws them as flat lines at 0).
    """
    fig = _new_figure(8.0, 5.5)
    sparse = getattr(path, "coef_sparse", None)
    if sparse is None:  # any object with a dense (L, p) ``coef``
        from .results import SparseRows

        sparse = SparseRows.from_dense(np.asarray(path.coef, dtype=float).reshape(len(path.lambdas), -1))
    if sparse.shape[0] == 0:
        _empty_message(fig, "empty path")
        return fig
    x = _log(path.lambdas)
    names = path.names()
    # Only the features that enter the path: the dense (L, p) array can be many times the data.
    active = sparse.active()
    coef = sparse.columns(active)  # (L, len(active))
    ax = fig.add_subplot()
    ax.set_xlabel("Log Lambda")
    ax.set_ylabel("Coefficients")
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":")
    if active.size == 0:
        ax.text(0.5, 0.5, "no coefficient enters the path", ha="center", va="center",
                transform=ax.transAxes)
    cmap = _cycle(len(active))
    for k, j in enumerate(active):
        ax.plot(x, coef[:, k], color=cmap[k], lw=1.0, gid=f"path-{j}")
    # Label the largest coefficients at the smallest lambda (the left end of the curves); the
    # x range is widened on the left to make room for the labels, as glmnet's ``pos = 2``.
    last = int(np.argmin(x))
    final = sparse.row(last)
    nz = np.nonzero(final)[0]
    order = nz[np.argsort(-np.abs(final[nz]), kind="stable")][:max(int(max_labels), 0)]
    lo, hi = (float(x.min()), float(x.max())) if x.size > 1 else (float(x[0]) - 0.5, float(x[0]) + 0.5)
    ax.set_xlim(lo - (0.2 * (hi - lo) if order.size else 0.0), hi)
    if order.size:
        ylo, yhi = ax.get_ylim()
        ypos = _spread(final[order], gap=0.04 * (yhi - ylo))
        for j, yp in zip(order, ypos):
            ax.text(lo - 0.01 * (hi - lo), yp, _txt(names[j]), ha="right", va="center", fontsize=7,
                    color=cmap[int(np.searchsorted(active, j))], gid="path-label")
    _top_df_axis(ax, x, np.asarray(path.n_nonzero), f=1.0, span=(lo, hi))
    fig.subplots_adjust(left=0.11, right=0.97, top=0.88, bottom=0.11)
    return fig


def _cycle(k: int) -> list:
    _require_matplotlib()
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(k)]


def cv_figure(cv, family: str = "binomial") -> Figure:
    """The cross-validation curve, as R's ``plot(cv.glmnet)``.

    Red dots: the mean held-out measure at each lambda with +/- 1 SE error bars; dotted
    vertical lines at log(lambda.min) and log(lambda.1se); a dashed horizontal line at the
    intercept-only model's CV value (the first lambda); the top axis shows the number of
    nonzero coefficients of the full-data fit; the y label is the measure's name.
    """
    from .metrics import NAMES
    from .outcomes import measure_label

    fig = _new_figure(8.0, 5.5)
    ax = fig.add_subplot()
    x = _log(cv.lambdas)
    mean = np.asarray(cv.cv_mean, dtype=float)
    sd = np.asarray(cv.cv_sd, dtype=float)
    ax.errorbar(x, mean, yerr=sd, fmt="none", ecolor="darkgrey", elinewidth=1.0, capsize=2.0,
                gid="cv-errorbars")
    ax.scatter(x, mean, color="red", s=14, zorder=3, gid="cv-mean")
    # The first lambda (lambda_max) keeps no gene: its CV value is the intercept-only level, the
    # line any signal has to beat.
    ax.axhline(float(mean[0]), color="tab:blue", ls="--", lw=1.0,
               label="intercept-only" if family != "cox" else "null model (no genes)", gid="intercept-only")
    ax.axvline(math.log(cv.lambda_min), color="black", ls=":", lw=1.0, label="lambda.min",
               gid="lambda.min")
    ax.axvline(math.log(cv.lambda_1se), color="black", ls=":", lw=1.0, label="lambda.1se",
               gid="lambda.1se")
    ax.set_xlabel("Log(λ)")
    ax.set_ylabel(_txt(NAMES.get(cv.measure, cv.measure) if family == "binomial"
                       else measure_label(cv.measure, family)))
    if x.size > 1:
        pad = 0.02 * float(x.max() - x.min())
        ax.set_xlim(float(x.min()) - pad, float(x.max()) + pad)
    # glmnet labels every lambda and lets R drop the overlapping ones; keep about 12.
    L = len(x)
    step = max(1, int(math.ceil(L / 12)))
    at = np.arange(0, L, step)
    _top_df_axis(ax, x, np.asarray(cv.n_nonzero)[at], at=x[at])
    ax.legend(handles=[h for h in ax.get_lines() if h.get_gid() == "intercept-only"], fontsize=8, loc="best")
    fig.subplots_adjust(left=0.12, right=0.97, top=0.88, bottom=0.11)
    return fig


def coef_figure(coefficients: pd.Series, classes) -> Figure:
    """Horizontal bars of the selected genes' coefficients, sorted, coloured by sign.

    A positive coefficient raises the probability of ``classes[1]`` (the case). With no gene
    selected the figure says so.
    """
    coefs = pd.Series(coefficients, dtype=float)
    coefs = coefs[coefs != 0]
    case = classes[1] if classes is not None and len(classes) > 1 else "the case class"
    control = classes[0] if classes is not None and len(classes) > 1 else "the control class"
    n = len(coefs)
    fig = _new_figure(7.0, max(2.5, 0.9 + 0.28 * n))
    if n == 0:
        _empty_message(fig, "no gene selected")
        return fig
    coefs = coefs.sort_values(kind="stable")
    ax = fig.add_subplot()
    pos = np.arange(n)
    colours = [_POS if v > 0 else _NEG for v in coefs.to_numpy()]
    ax.barh(pos, coefs.to_numpy(), color=colours, gid="coef-bars")
    ax.set_yticks(pos)
    ax.set_yticklabels([_txt(g) for g in coefs.index], fontsize=8)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel(_txt(f"coefficient (positive raises P({case}), negative raises P({control}))"))
    ax.set_title(f"{n} selected gene{'s' if n != 1 else ''}")
    fig.tight_layout()
    return fig


def stability_figure(st, *, top: int = 15) -> Figure:
    """Stability paths: each top feature's selection probability against log(lambda).

    The curves are the running maximum of the per-lambda selection probability from the start
    of the path (``st.max_probability_path``), drawn over the lambda region of the error control
    (shaded, ``lambdas[0 .. region_index]``): each curve ends at the feature's selection
    probability in the table (``st.max_probability``, Meinshausen & Bühlmann's maximum over
    the region). A dashed horizontal line marks the cutoff; selected features are drawn solid.
    The title gives the realised q next to the target q.
    """
    fig = _new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    x = _log(st.lambdas)
    r = min(max(int(st.region_index), 0), len(x) - 1)
    maxp = np.asarray(st.max_probability, dtype=float)
    order = np.argsort(-maxp, kind="stable")
    order = order[maxp[order] > 0][:max(int(top), 0)]
    sparse = getattr(st, "max_probability_path_sparse", None)
    if sparse is None:  # any object with a dense (L, p) ``max_probability_path``
        curves = np.asarray(st.max_probability_path, dtype=float)[: r + 1, order]
    else:  # the drawn features' columns only: the dense (L, p) array can be many times the data
        cols = np.sort(order)
        curves = sparse.columns(cols)[: r + 1, np.searchsorted(cols, order)]
    names = list(st.feature_names)
    edge = float(x[r])
    ax.axvspan(edge, float(x[0]), color="0.9", lw=0, label="lambda region", gid="stability-region")
    ax.axvline(edge, color="0.5", lw=0.8, ls=":", gid="stability-region-edge")
    ax.axhline(float(st.cutoff), color="black", ls="--", lw=1.0, label=f"cutoff {st.cutoff:.2f}",
               gid="stability-cutoff")
    cmap = _cycle(len(order))
    for k, j in enumerate(order):
        sel = maxp[j] >= st.cutoff
        ax.plot(x[: r + 1], curves[:, k], color=cmap[k], lw=1.6 if sel else 0.9, ls="-" if sel else "--",
                label=_txt(names[j]), gid=f"stability-{j}")
    if not order.size:
        ax.text(0.5, 0.5, "no feature was selected in any subsample", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    if x.size > 1:
        ax.set_xlim(float(x.min()), float(x.max()))
    ax.set_xlabel("Log Lambda")
    ax.set_ylabel("selection probability (max over the path so far)")
    reach = "" if getattr(st, "target_reachable", True) else ": target out of reach"
    ax.set_title(f"Stability selection: {len(st.selected)} selected "
                 f"(realised q = {st.q:.3g} of target {st.q_target:.3g}{reach}; "
                 f"PFER bound = {st.pfer_bound:.3g})", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.09, right=0.75, top=0.9, bottom=0.11)
    return fig


# Features an importance_figure shows (its default): a ranking's figure reads only these rows.
_FIGURE_TOP = 20


def importance_figure(frame: pd.DataFrame, *, value_column: str, title: str, top: int = _FIGURE_TOP,
                      error_column: str | None = None, xlabel: str | None = None) -> Figure:
    """Horizontal bars of a ranking's ``value_column`` for its ``top`` features.

    ``frame`` needs a ``feature`` column; rows are taken in ``rank`` order when a ``rank``
    column exists, else by decreasing value. A ``decision`` column (Boruta) colours the bars;
    ``error_column`` (e.g. ``importance_std``) adds error bars.
    """
    if value_column not in frame.columns:
        raise ValueError(f"value_column must be a column of the frame (got value_column={value_column!r}, "
                         f"columns={list(frame.columns)})")
    if "feature" not in frame.columns:
        raise ValueError(f"the frame needs a 'feature' column (got columns={list(frame.columns)})")
    df = frame
    if "rank" in df.columns:
        df = df.sort_values("rank", kind="stable")
    else:
        df = df.sort_values(value_column, ascending=False, kind="stable")
    df = df.head(max(int(top), 0))
    n = len(df)
    fig = _new_figure(7.0, max(2.5, 1.0 + 0.28 * n))
    if n == 0:
        _empty_message(fig, "nothing to show")
        return fig
    ax = fig.add_subplot()
    pos = np.arange(n)[::-1]  # rank 1 at the top
    values = pd.to_numeric(df[value_column], errors="coerce").to_numpy(dtype=float)
    if "decision" in df.columns:
        colours = [_DECISION_COLOURS.get(str(d), "#4d4d4d") for d in df["decision"]]
    else:
        colours = ["#4d4d4d"] * n
    xerr = None
    if error_column is not None and error_column in df.columns:
        xerr = pd.to_numeric(df[error_column], errors="coerce").to_numpy(dtype=float)
    ax.barh(pos, values, xerr=xerr, color=colours, ecolor="0.5", capsize=1.5, gid="importance-bars")
    ax.set_yticks(pos)
    ax.set_yticklabels([_txt(g) for g in df["feature"]], fontsize=8)
    ax.axvline(0.0, color="black", lw=0.6)
    ax.set_xlabel(_txt(xlabel or value_column))
    ax.set_title(_txt(title))
    if "decision" in df.columns:
        from matplotlib.patches import Patch

        seen = [d for d in _DECISION_COLOURS if d in set(map(str, df["decision"]))]
        if seen:
            ax.legend(handles=[Patch(color=_DECISION_COLOURS[d], label=d) for d in seen],
                      fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def permutation_figure(perm) -> Figure:
    """Histogram of the label-permutation null statistics with the observed one marked."""
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    null = np.asarray(perm.null_statistics, dtype=float)
    null = null[np.isfinite(null)]
    if null.size:
        bins = int(min(30, max(5, null.size // 2)))
        ax.hist(null, bins=bins, color="0.7", edgecolor="white", gid="null-histogram")
    ax.axvline(float(perm.statistic), color="red", lw=2.0, label="observed", gid="observed")
    ax.set_xlabel("CV improvement over the intercept-only model")
    ax.set_ylabel("permutations")
    ax.set_title(f"Label-permutation test: p = {perm.p_value:.3g} "
                 f"({len(np.asarray(perm.null_statistics))} permutations)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def risk_groups_figure(time, event, risk, rule: str = "lambda_1se") -> Figure:
    """Kaplan-Meier curves of the two halves of the **pre-validated** risk (each sample's risk from
    the CV model that did not see it, at the rule's lambda), with the log-rank p. Risk groups
    fitted on the same samples are never drawn: they separate by construction."""
    from .survival_stats import risk_groups

    fig = _new_figure(7.0, 5.0)
    try:
        groups = risk_groups(time, event, risk)
    except ValueError as err:
        _empty_message(fig, str(err))
        return fig
    ax = fig.add_subplot()
    for km, name, colour in ((groups.low_km, "low", _NEG), (groups.high_km, "high", _POS)):
        if km is None:
            continue
        t = np.concatenate([[0.0], km.time])
        s = np.concatenate([[1.0], km.survival])
        n = int(groups.high.sum() if name == "high" else (~groups.high).sum())
        ax.step(t, s, where="post", color=colour, label=f"{name} pre-validated risk (n = {n})", gid=f"km-{name}")
        cens = km.n_censor > 0
        ax.plot(km.time[cens], km.survival[cens], "|", color=colour, ms=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time")
    ax.set_ylabel("survival (Kaplan-Meier)")
    ax.set_title(_txt(f"Cross-validated risk groups at {str(rule).replace('_', '.')}: log-rank "
                      f"p = {groups.logrank.p_value:.3g}"))
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def predicted_figure(observed, predicted, rule: str = "lambda_1se") -> Figure:
    """Cross-validated (pre-validated) predictions against the observed outcome, with the CV R^2
    (1 - SSE / SST of the held-out predictions) and MSE in the title."""
    from .survival_stats import prediction_r2

    fig = _new_figure(6.0, 5.5)
    ax = fig.add_subplot()
    y = np.asarray(observed, float)
    f = np.asarray(predicted, float)
    r2, mse = prediction_r2(y, f)
    ax.scatter(f, y, s=16, color="tab:blue", gid="predicted-points")
    lo, hi = float(min(y.min(), f.min())), float(max(y.max(), f.max()))
    ax.plot([lo, hi], [lo, hi], color="black", ls="--", lw=0.8, gid="identity")
    ax.set_xlabel(_txt(f"cross-validated prediction at {str(rule).replace('_', '.')}"))
    ax.set_ylabel("observed")
    ax.set_title(_txt(f"Pre-validated predictions: CV R² = {r2:.3f}, MSE = {mse:.4g}"))
    fig.tight_layout()
    return fig


# --- the workflow's figures --------------------------------------------------------------------
def _first_column(frame: pd.DataFrame, candidates) -> str | None:
    return next((c for c in candidates if c in frame.columns), None)


def _ranking_figure(result, key: str):
    try:
        frame = result.to_frame(top=_FIGURE_TOP)
    except Exception:  # noqa: BLE001 - a ranking we cannot read is left out of the figures
        return None
    if not isinstance(frame, pd.DataFrame) or "feature" not in frame.columns:
        return None
    if key == "forest":
        col = _first_column(frame, ("importance_mean", "importance", "impurity_importance"))
        if col is None:
            return None
        err = "importance_std" if col == "importance_mean" else None
        return importance_figure(frame, value_column=col, error_column=err,
                                 title="Random forest: out-of-bag permutation importance")
    if key == "boruta":
        col = _first_column(frame, ("median_importance", "importance", "hits"))
        if col is None:
            return None
        return importance_figure(frame, value_column=col, title="Boruta (colour: decision)")
    if key == "univariate":
        if "p_value" in frame.columns:
            frame = frame.assign(minus_log10_p=-np.log10(np.maximum(
                pd.to_numeric(frame["p_value"], errors="coerce").to_numpy(dtype=float), 1e-300)))
            return importance_figure(frame, value_column="minus_log10_p", xlabel="-log10(p)",
                                     title="Univariate tests")
        col = _first_column(frame, ("statistic",))
        if col is None:
            return None
        return importance_figure(frame.assign(abs_statistic=frame[col].abs()),
                                 value_column="abs_statistic", title="Univariate tests")
    return None


def all_figures(report) -> dict[str, Figure]:
    """Every figure that applies to a :class:`~jaxlasso.workflow.SelectionReport`.

    Keys (in report order, absent where the method did not run): ``path``, ``cv``,
    ``coefficients``, ``stability``, ``permutation``, ``forest``, ``boruta``, ``univariate``.
    """
    figs: dict[str, Figure] = {}
    cv = report.cv
    figs["path"] = path_figure(cv.path)
    family = getattr(report, "family", "binomial")
    figs["cv"] = cv_figure(cv, family)
    figs["coefficients"] = coef_figure(report.coefficients, report.classes) if family == "binomial" else \
        coef_figure(report.coefficients, ("lower " + ("hazard" if family == "cox" else "outcome"),
                                          "higher " + ("hazard" if family == "cox" else "outcome")))
    outcome = getattr(report, "outcome", None)
    preval = getattr(report, "prevalidated", None)
    if family == "cox" and preval is not None:
        figs["risk_groups"] = risk_groups_figure(outcome.time, outcome.event, preval, report.rule)
    elif family == "gaussian" and preval is not None:
        figs["predicted"] = predicted_figure(np.asarray(outcome.y, float), preval, report.rule)
    if report.stability is not None:
        figs["stability"] = stability_figure(report.stability)
    perm = getattr(report.diagnosis, "permutation", None)
    if perm is not None:
        figs["permutation"] = permutation_figure(perm)
    for key in ("forest", "boruta", "univariate"):
        result = getattr(report, key, None)
        if result is not None:
            fig = _ranking_figure(result, key)
            if fig is not None:
                figs[key] = fig
    return figs


# --- output ------------------------------------------------------------------------------------
def _close(fig) -> None:
    """Release a figure (pyplot keeps a reference only to figures it created)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def _rc():
    import matplotlib

    return matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"})


def figure_png(fig, *, dpi: int = DPI, close: bool = False) -> bytes:
    """The figure as PNG bytes (deterministic: no software/time metadata)."""
    buf = io.BytesIO()
    with _rc():
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    if close:
        _close(fig)
    return buf.getvalue()


def save_figure(fig, directory, stem: str) -> list[Path]:
    """Write ``stem.png`` (dpi 120) and ``stem.svg`` into ``directory``; close the figure.

    Output is byte-identical for identical inputs (fixed SVG hash salt, no dates or software
    versions in the metadata). Returns the two paths.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
    try:
        with _rc():
            fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        _close(fig)
    return [png, svg]
