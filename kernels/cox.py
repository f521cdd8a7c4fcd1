"""The Cox datafit: negative log partial likelihood, Breslow (glmnet's) or Efron ties.

With weights ``w`` (the kernels pass them normalised to sum 1, as glmnet's ``coxnet`` does),
event indicators ``d`` and times ``t``, the Breslow log partial likelihood is

    loglik(eta) = sum_i w_i d_i eta_i - sum_k W_k log S_k,
    S_k = sum_{j : t_j >= t_k} w_j exp(eta_j),  W_k = sum_{i : t_i = t_k, d_i = 1} w_i,

over the distinct event times ``t_k``; a row censored at ``t_k`` is at risk at ``t_k``. The loss
is ``-loglik``. Efron's correction (as ``survival::coxph`` weights it) replaces the ``W_k log
S_k`` of a time with ``m_k`` tied events by ``(W_k / m_k) sum_{r < m_k} log(S_k - (r / m_k)
E_k)``, ``E_k = sum_{tied events} w_i exp(eta_i)``; with one event per time both agree.

Data layout (:class:`CoxData`, computed once on the host by ``jaxlasso.survival``): the rows
sorted by time and, for each sorted position, the first and last positions of its block of equal
times (no result depends on the order inside a block). Then every risk-set sum is a *reverse*
cumulative sum read at the first position of a block, and every sum over "the event times at or
before this row's time" a *forward* cumulative sum read at the last position of its block: O(n)
per evaluation, no Python loop, jit/vmap-safe. Zero-weight rows (a CV fold's held-out rows, the
padding of a batch) contribute to no sum, so one layout from the full data serves every fold.

Both tie rules are written as one sum over event rows: row ``i`` in block ``k`` carries a weight
``omega_i`` and an Efron fraction ``c_i`` and contributes ``omega_i log(S_k - c_i E_k)``. Breslow:
``omega_i = w_i d_i``, ``c_i = 0``. Efron: ``omega_i = W_k / m_k`` and ``c_i = r_i / m_k`` for the
``r_i``-th (from 0) positive-weight event of its block (``m_k`` counts positive-weight events, so a
zero weight is the same as a dropped row, as for Breslow).

Exponentials are shifted by the largest linear predictor among positive-weight rows (the partial
likelihood is invariant to a common shift), so nothing overflows. The Hessian diagonal with
respect to ``eta`` is what glmnet's ``coxnet`` uses as its IRLS weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from . import families
from ._types import Array

TIES = ("breslow", "efron")


class CoxData(NamedTuple):
    """A right-censored response laid out for cumulative sums (the kernels' ``Problem.y``).

    Positions refer to the rows sorted by time (ties: events first); every field is an array so
    that a batch of responses (permuted ``(time, event)`` pairs) is a pytree with a leading axis.
    """

    order: Array
    """(n,) int32: the row at each sorted position."""
    rank: Array
    """(n,) int32: the sorted position of each row (the inverse permutation of ``order``)."""
    event: Array
    """(n,) float: event indicator (1 event, 0 censored) at each sorted position."""
    first: Array
    """(n,) int32: first sorted position of the position's block of equal times."""
    last: Array
    """(n,) int32: last sorted position of that block."""
    real: Array
    """(n,) float: 1 at every sorted position of a real row. The engine pads every leaf of a
    response with zeros (and the padded rows with zero weight); a padded position's ``order``
    of 0 would otherwise read row 0's weight. Padded positions (at the end) then carry no weight,
    and their ``first`` / ``last`` of 0 only add zeros to the first block."""


def _rev_cumsum(x: Array) -> Array:
    return jnp.flip(jnp.cumsum(jnp.flip(x)))


def _block_sum(x: Array, first: Array) -> Array:
    """Sum of ``x`` over each position's block of equal times, at every position."""
    n = x.shape[0]
    return jax.ops.segment_sum(x, first, num_segments=n)[first]


class _Terms(NamedTuple):
    """Per sorted position: the exponentials and the event-row terms of both tie rules."""

    ws: Array  # (n,) weights in sorted order
    we: Array  # (n,) w * exp(eta - shift) in sorted order
    omega: Array  # (n,) weight of the row's log term (0 for censored / zero-weight rows)
    c: Array  # (n,) Efron fraction (0 for Breslow)
    den: Array  # (n,) S_k - c E_k (1 where omega is 0, so logs and divisions stay finite)
    centred: Array  # (n,) eta - shift in sorted order (0 on zero-weight rows)


def _terms(eta: Array, y: CoxData, w: Array, ties: str) -> _Terms:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got ties={ties!r}")
    ws = w[y.order] * y.real
    es = eta[y.order]
    positive = ws > 0
    shift = jax.lax.stop_gradient(jnp.max(jnp.where(positive, es, -jnp.inf)))
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    centred = jnp.where(positive, es - shift, 0.0)
    we = jnp.where(positive, ws * jnp.exp(centred), 0.0)
    S = _rev_cumsum(we)[y.first]
    d = y.event
    if ties == "breslow":
        omega = ws * d
        c = jnp.zeros_like(omega)
        den = S
    else:
        dpos = d * positive
        m = _block_sum(dpos, y.first)
        # Rank of a positive-weight event among those of its block (events come first in it).
        r = jnp.cumsum(dpos) - dpos
        r = r - r[y.first]
        safe_m = jnp.where(m > 0, m, 1.0)
        omega = dpos * _block_sum(ws * d, y.first) / safe_m
        c = dpos * r / safe_m
        E = _block_sum(we * d, y.first)
        den = S - c * E
    den = jnp.where(omega > 0, den, 1.0)
    return _Terms(ws, we, omega, c, den, centred)


def _to_rows(x_sorted: Array, y: CoxData, w: Array) -> Array:
    # A zero-weight row's value is 0 (it is in no sum); masking also clears padded rows, whose
    # rank of 0 points at position 0.
    return jnp.where(w > 0, x_sorted[y.rank], 0.0)


def loss(eta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """``-loglik(eta)`` with weights ``w`` as given (the kernels pass them summing to 1)."""
    t = _terms(eta, y, w, ties)
    # sum(omega) = sum(w d), so the shift of the exponentials cancels against the eta term.
    return jnp.sum(t.omega * jnp.log(t.den)) - jnp.sum(t.ws * y.event * t.centred)


def loss_change(eta: Array, delta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """``loss(eta + delta) - loss(eta)`` without cancellation.

    Each log term changes by ``log(den(eta + delta) / den(eta)) = log1p(N / den)`` with
    ``N = sum_{R_k} w e^eta expm1(delta) - c sum_{tied events} w e^eta expm1(delta)``: a tiny
    ``delta`` gives a tiny, accurate change, where the difference of two losses would lose
    everything below ``eps * |loss|`` -- the size of a line-search step close to the optimum.
    """
    t = _terms(eta, y, w, ties)
    ds = delta[y.order]
    wx = t.we * jnp.expm1(jnp.where(t.ws > 0, ds, 0.0))
    N = _rev_cumsum(wx)[y.first]
    if ties == "efron":
        N = N - t.c * _block_sum(wx * y.event, y.first)
    change = jnp.where(t.omega > 0, t.omega * jnp.log1p(N / t.den), 0.0)
    return jnp.sum(change) - jnp.sum(t.ws * y.event * ds)


def _cumulative(t: _Terms, y: CoxData):
    """Per position: ``A = sum_{k: t_k <= t} sum omega / den``, the same with ``den^2`` (``C``),
    and the own-block corrections of Efron's rule (``B``, ``D``)."""
    inv = t.omega / t.den
    inv2 = inv / t.den
    A = jnp.cumsum(inv)[y.last]
    C = jnp.cumsum(inv2)[y.last]
    B = _block_sum(inv * t.c, y.first)
    D = _block_sum(inv2 * t.c * (2.0 - t.c), y.first)
    return A, B, C, D


def residual(eta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """Gradient of :func:`loss` with respect to ``eta`` (row order):
    ``w_j e_j (A_j - d_j B_j) - w_j d_j``."""
    t = _terms(eta, y, w, ties)
    A, B, _, _ = _cumulative(t, y)
    g = t.we * (A - y.event * B) - t.ws * y.event
    return _to_rows(g, y, w)


def irls_weights(eta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """Diagonal of the Hessian of :func:`loss` with respect to ``eta`` (row order): glmnet's
    ``coxnet`` IRLS weights ``w_j e_j (A_j - d_j B_j) - (w_j e_j)^2 (C_j - d_j D_j)``, >= 0."""
    t = _terms(eta, y, w, ties)
    A, B, C, D = _cumulative(t, y)
    h = t.we * (A - y.event * B) - t.we * t.we * (C - y.event * D)
    return _to_rows(jnp.maximum(h, 0.0), y, w)


def gram(XT: Array, eta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """``XT H XT^T`` for the exact Hessian ``H`` of :func:`loss` in ``eta``; ``XT`` (k, n) in row
    order.

    Each log term ``omega_i log(den_i)``, ``den_i = a_i . 1`` with ``a_i = (1[R_k] - c_i 1[tied
    events]) * w e``, contributes ``omega_i (diag(a_i) / den_i - a_i a_i^T / den_i^2)``. The
    diagonal parts sum to ``w e (A - d B)`` (the positive part of :func:`residual`); the rank-one
    parts become ``U U^T`` with ``U``'s column ``i`` = ``XT a_i sqrt(omega_i) / den_i`` -- a reverse
    cumulative sum of ``XT * w e`` over the sorted rows read at each block's first position (minus
    Efron's block sums). Costs two Gram-sized products; glmnet's ``coxnet`` uses the diagonal alone, whose
    Newton steps converge linearly (a hundred iterations per lambda on small p >> n problems).
    """
    t = _terms(eta, y, w, ties)
    A, B, _, _ = _cumulative(t, y)
    diag = t.we * (A - y.event * B)  # sorted order
    XTs = XT[:, y.order] * y.real
    M = XTs * t.we
    V = jnp.flip(jnp.cumsum(jnp.flip(M, axis=1), axis=1), axis=1)[:, y.first]
    if ties == "efron":
        n = M.shape[1]
        Md = M * y.event
        blk = jax.ops.segment_sum(Md.T, y.first, num_segments=n)[y.first].T
        V = V - t.c * blk
    U = V * (jnp.sqrt(t.omega) / t.den)
    G = (XTs * diag) @ XTs.T - U @ U.T
    return 0.5 * (G + G.T)


def saturated_loglik(y: CoxData, w: Array) -> Array:
    """glmnet's saturated log partial likelihood ``-sum_k W_k log W_k`` (``coxnet.deviance``)."""
    ws = w[y.order] * y.real
    Wk = jax.ops.segment_sum(ws * y.event, y.first, num_segments=ws.shape[0])
    return -jnp.sum(xlogy(Wk, Wk))


def deviance(eta: Array, y: CoxData, w: Array, ties: str = "breslow") -> Array:
    """glmnet's Cox deviance ``2 (loglik_saturated - loglik(eta))`` with the weights as given."""
    return 2.0 * (saturated_loglik(y, w) + loss(eta, y, w, ties))


@dataclass(frozen=True)
class Cox:
    """The Cox family of :mod:`kernels.families`: ``y`` is a :class:`CoxData`, ``ties`` a static
    choice (``"breslow"``, glmnet's; ``"efron"``).

    No intercept (the partial likelihood is invariant to a shift of ``eta``); the null fit is
    ``eta = 0``. ``deviance`` is glmnet's ``2 (loglik_saturated - loglik)``, so that ``1 -
    deviance / null_deviance`` is glmnet's ``dev.ratio`` (the saturated term is a constant of the
    data; the protocol's ``2 * loss`` up to it). ``stop_rule`` never fires in the kernel: glmnet's
    Cox rule compares the deviance ratio with its value ``MNLAM - 1`` lambdas back (relative change
    < 100 fdev) and stops above 0.99, which the path's single previous value cannot express; the
    API cuts the solved path at that rule afterwards (``jaxlasso.survival.glmnet_cox_length``) --
    the solutions before the cut do not depend on where the kernel stops, and the kernel's own
    ``devmax`` test (0.999) stops later than glmnet's 0.99.
    """

    ties: str = "breslow"
    name: str = "cox"
    has_intercept: bool = False

    def __post_init__(self):
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {', '.join(TIES)} (got ties={self.ties!r})")

    def null_fit(self, y: CoxData, w: Array, fit_intercept: bool) -> tuple[Array, Array]:
        return jnp.zeros((), w.dtype), jnp.zeros(w.shape[-1:], w.dtype)

    def loss(self, eta: Array, y: CoxData, w: Array) -> Array:
        return loss(eta, y, w, self.ties)

    def loss_change(self, eta: Array, delta: Array, y: CoxData, w: Array) -> Array:
        return loss_change(eta, delta, y, w, self.ties)

    def residual(self, eta: Array, y: CoxData, w: Array) -> Array:
        return residual(eta, y, w, self.ties)

    def irls_weights(self, eta: Array, y: CoxData, w: Array) -> Array:
        return irls_weights(eta, y, w, self.ties)

    def deviance(self, eta: Array, y: CoxData, w: Array) -> Array:
        return deviance(eta, y, w, self.ties)

    def gram(self, XT: Array, eta: Array, y: CoxData, w: Array) -> Array:
        return gram(XT, eta, y, w, self.ties)

    @staticmethod
    def ridge_scale(y: CoxData, w: Array, fit_intercept: bool):
        # The response has no scale to standardise: a fold's ridge term is the full data's.
        return None

    @staticmethod
    def stop_rule(dev_ratio: Array, dev_prev: Array, fdev: float) -> Array:
        return jnp.zeros((), bool)


COX = Cox()
COX_EFRON = Cox(ties="efron")
families.register(COX)
