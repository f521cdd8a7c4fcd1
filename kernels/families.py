"""Families: the datafit of a path problem, passed to the kernels as static data.

The path (``path.solve_path``), the proximal-Newton solver (``solver.newton_solve``) and the
compiled entry points (``batched``) know nothing about a family's loss: they call the methods of
a *family object*, a hashable frozen dataclass that is a static argument of ``jit`` (part of
every compile-cache key: two families never share an executable, two equal family objects
always do). Every array argument is traced, so a family must be pure ``jax.numpy``.

THE PROTOCOL a family implements (``w`` is the lane's weight vector normalised to sum to 1;
``y`` is the family's response pytree -- an (n,) array for binomial and Gaussian, any pytree of
arrays whose leaves carry the observation axis last for a family that needs more, e.g. sort order
and risk-set indices computed once on the host; a batched lane axis, if any, is added by ``vmap``
in front of every leaf):

``name`` : str
    The family's name (``"binomial"``, ``"gaussian"``).
``has_intercept`` : bool
    Whether the model has an unpenalised intercept at all. A family without one (Cox: the
    partial likelihood is invariant to a shift of ``eta``) is always solved with
    ``fit_intercept=False``; the API layer enforces it.
``null_fit(y, w, fit_intercept) -> (b0, eta0)``
    The fit with every coefficient zero: the intercept (``0.0`` without one) and the linear
    predictor of every row, (n,). Its deviance is the null deviance of the deviance ratio.
``loss(eta, y, w) -> ()``
    The datafit ``sum_i w_i l(eta_i, y_i)`` (a family with coupled observations, such as Cox,
    defines its own sum); ``deviance = 2 * loss``.
``loss_change(eta, delta, y, w) -> ()``
    ``loss(eta + delta) - loss(eta)`` computed without cancellation, term by term: the Armijo
    line search compares it with a predicted decrease down to 1e-15 relative, where the
    difference of two losses would be rounding noise.
``residual(eta, y, w) -> (n,)``
    The gradient of ``loss`` with respect to ``eta``.
``irls_weights(eta, y, w) -> (n,)``
    The diagonal of the Hessian of ``loss`` with respect to ``eta`` (glmnet's IRLS weights; for
    Cox the diagonal of the partial likelihood's Hessian, which depends on the risk sets in ``y``).
``deviance(eta, y, w) -> ()``
    ``2 * loss`` (binomial: twice the weighted mean log-loss; Gaussian: the weighted mean
    squared residual).
``ridge_scale(y, w, fit_intercept) -> () or None``
    A factor on the lane's ridge (L2) strengths, or None for none (binomial). glmnet's Gaussian
    fit standardises ``y`` on each fit's own weights, which divides the ridge part of the
    penalty by that fit's SD of ``y``; the kernel's ``y`` is standardised once on the full data,
    so a CV fold's ridge term is rescaled by ``1 / SD_fold(y)`` (1 on the full data) to solve
    the problem cv.glmnet solves on that fold.
``stop_rule(dev_ratio, dev_prev, fdev) -> bool``
    glmnet's deviance-change test of the early stop for this family (applied from the
    ``MNLAM``-th lambda on, with the ``devmax`` test, by the path): the change of the deviance
    ratio from the previous lambda is "too small".

Families are singletons by value (``BINOMIAL``, ``GAUSSIAN``); :func:`get` maps a name to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from . import losses
from ._types import Array


@dataclass(frozen=True)
class Binomial:
    """Logistic regression on labels in {0, 1}: ``l = log(1 + exp(eta)) - y eta``."""

    name: str = "binomial"
    has_intercept: bool = True

    @staticmethod
    def null_fit(y: Array, w: Array, fit_intercept: bool) -> tuple[Array, Array]:
        ybar = jnp.sum(w * y)
        if fit_intercept:
            b0 = jnp.log(ybar) - jnp.log1p(-ybar)
        else:
            b0 = jnp.zeros((), w.dtype)
        return b0, jnp.full(w.shape[-1:], b0, w.dtype)

    @staticmethod
    def loss(eta: Array, y: Array, w: Array) -> Array:
        return losses.weighted_loss(eta, y, w)

    @staticmethod
    def loss_change(eta: Array, delta: Array, y: Array, w: Array) -> Array:
        return losses.loss_change(eta, delta, y, w)

    @staticmethod
    def residual(eta: Array, y: Array, w: Array) -> Array:
        return losses.residual(eta, y, w)

    @staticmethod
    def irls_weights(eta: Array, y: Array, w: Array) -> Array:
        return losses.irls_weights(eta, w)

    @staticmethod
    def deviance(eta: Array, y: Array, w: Array) -> Array:
        return losses.deviance(eta, y, w)

    @staticmethod
    def ridge_scale(y: Array, w: Array, fit_intercept: bool):
        return None

    @staticmethod
    def stop_rule(dev_ratio: Array, dev_prev: Array, fdev: float) -> Array:
        # glmnet's lognet: dev(m) - dev(m-1) < sml, an ABSOLUTE change of the deviance ratio
        # (glmnetpp elnet_path/binomial_base.hpp, process_point_fit), unlike elnet's relative one.
        return dev_ratio - dev_prev < fdev


@dataclass(frozen=True)
class Gaussian:
    """Least squares: ``l = (y - eta)^2 / 2``, glmnet's ``1/(2 sum w) sum w_i (y_i - eta_i)^2``.

    The kernel sees ``y`` as the API layer passes it: glmnet's standardised response (weighted
    mean removed when an intercept is fitted, divided by its weighted RMS), so that ``tol``
    means the same on any scale of ``y``. Its Hessian is ``w`` itself: one Newton step solves the
    quadratic model exactly, and the line search accepts the full step.
    """

    name: str = "gaussian"
    has_intercept: bool = True

    @staticmethod
    def null_fit(y: Array, w: Array, fit_intercept: bool) -> tuple[Array, Array]:
        b0 = jnp.sum(w * y) if fit_intercept else jnp.zeros((), w.dtype)
        return b0, jnp.full(w.shape[-1:], b0, w.dtype)

    @staticmethod
    def loss(eta: Array, y: Array, w: Array) -> Array:
        r = y - eta
        return 0.5 * jnp.sum(w * r * r)

    @staticmethod
    def loss_change(eta: Array, delta: Array, y: Array, w: Array) -> Array:
        # ((y - eta - d)^2 - (y - eta)^2) / 2 = d (eta - y) + d^2 / 2, with no difference of
        # two nearly equal squares.
        return jnp.sum(w * delta * ((eta - y) + 0.5 * delta))

    @staticmethod
    def residual(eta: Array, y: Array, w: Array) -> Array:
        return w * (eta - y)

    @staticmethod
    def irls_weights(eta: Array, y: Array, w: Array) -> Array:
        return jnp.broadcast_to(w, eta.shape)

    @staticmethod
    def deviance(eta: Array, y: Array, w: Array) -> Array:
        r = y - eta
        return jnp.sum(w * r * r)

    @staticmethod
    def ridge_scale(y: Array, w: Array, fit_intercept: bool):
        ybar = jnp.sum(w * y) if fit_intercept else 0.0
        r = y - ybar
        return 1.0 / jnp.sqrt(jnp.sum(w * r * r))

    @staticmethod
    def stop_rule(dev_ratio: Array, dev_prev: Array, fdev: float) -> Array:
        # glmnet's elnet: (rsq - rsq0) / rsq < sml, i.e. a relative change (never at rsq = 0).
        return dev_ratio - dev_prev < fdev * dev_ratio


BINOMIAL = Binomial()
GAUSSIAN = Gaussian()

_REGISTRY: dict[str, object] = {"binomial": BINOMIAL, "gaussian": GAUSSIAN}


def register(family) -> None:
    """Make ``family`` available to :func:`get` under ``family.name`` (a family defined outside
    this module, e.g. Cox, registers itself on import)."""
    hash(family)  # a family is a static jit argument: it must be hashable
    _REGISTRY[family.name] = family


def get(family) -> object:
    """The family object for a name (``"binomial"``, ``"gaussian"``, or a registered one), or
    ``family`` itself when it already is one."""
    if isinstance(family, str):
        try:
            return _REGISTRY[family]
        except KeyError:
            raise ValueError(f"family must be one of {', '.join(sorted(_REGISTRY))} "
                             f"(got family={family!r})") from None
    return family


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


__all__ = ["BINOMIAL", "GAUSSIAN", "Binomial", "Gaussian", "get", "names", "register"]
