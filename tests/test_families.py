"""The family protocol of the kernels (kernels/families.py) and glmnet's per-family early stop."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kernels import batched, families
from kernels.families import BINOMIAL, GAUSSIAN

FAMILIES = [BINOMIAL, GAUSSIAN]


def _data(family, n=9, seed=0):
    rng = np.random.default_rng(seed)
    eta = rng.normal(size=n) * 2
    y = (rng.random(n) < 0.4).astype(float) if family is BINOMIAL else rng.normal(size=n)
    w = rng.random(n)
    w[2] = 0.0
    return jnp.asarray(eta), jnp.asarray(y), jnp.asarray(w / w.sum())


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_derivatives_and_loss_change_are_consistent(family):
    with jax.enable_x64(True):
        eta, y, w = _data(family)
        loss = lambda e: family.loss(e, y, w)  # noqa: E731
        np.testing.assert_allclose(family.residual(eta, y, w), jax.grad(loss)(eta), rtol=1e-12, atol=1e-15)
        hess = jax.hessian(loss)(eta)
        np.testing.assert_allclose(family.irls_weights(eta, y, w), jnp.diagonal(hess), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(family.deviance(eta, y, w), 2 * loss(eta), rtol=1e-14)
        delta = jnp.linspace(-0.7, 0.9, eta.shape[0])
        np.testing.assert_allclose(family.loss_change(eta, delta, y, w), loss(eta + delta) - loss(eta),
                                   rtol=1e-10)
        # Term by term: a change of 1e-9 is resolved to full relative accuracy (the difference
        # of the two losses would keep only ~7 digits of it).
        tiny = 1e-9 * delta
        lin = jnp.dot(family.residual(eta, y, w), tiny)
        np.testing.assert_allclose(family.loss_change(eta, tiny, y, w), lin, rtol=1e-7)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_null_fit_minimises_the_intercept_only_loss(family):
    with jax.enable_x64(True):
        _, y, w = _data(family, seed=3)
        b0, eta0 = family.null_fit(y, w, True)
        np.testing.assert_allclose(eta0, np.full(y.shape, float(b0)))
        # Stationary in the intercept: the residuals sum to zero.
        assert abs(float(jnp.sum(family.residual(eta0, y, w)))) < 1e-14
        b0, eta0 = family.null_fit(y, w, False)
        assert float(b0) == 0.0 and not np.any(np.asarray(eta0))


def test_families_are_static_cache_keys():
    assert hash(families.Gaussian()) == hash(GAUSSIAN) and families.Gaussian() == GAUSSIAN
    assert BINOMIAL != GAUSSIAN
    kw = dict(k=4, fit_intercept=True, standardize=True)
    assert batched.single_solver(**kw, family=GAUSSIAN) is batched.single_solver(**kw, family=families.Gaussian())
    assert batched.single_solver(**kw, family=GAUSSIAN) is not batched.single_solver(**kw, family=BINOMIAL)
    assert families.get("gaussian") is GAUSSIAN and families.get(BINOMIAL) is BINOMIAL
    with pytest.raises(ValueError, match="family must be one of .*got family='poisson'"):
        families.get("poisson")


def test_stop_rules_are_glmnets():
    # lognet: absolute change of the deviance ratio; elnet: relative change.
    assert bool(BINOMIAL.stop_rule(jnp.asarray(0.5), jnp.asarray(0.5 - 9e-6), 1e-5))
    assert not bool(GAUSSIAN.stop_rule(jnp.asarray(0.5), jnp.asarray(0.5 - 9e-6), 1e-5))
    assert bool(GAUSSIAN.stop_rule(jnp.asarray(0.5), jnp.asarray(0.5 - 4e-6), 1e-5))
    assert not bool(GAUSSIAN.stop_rule(jnp.asarray(0.0), jnp.asarray(0.0), 1e-5))


@pytest.mark.r
def test_binomial_default_path_length_matches_glmnet_n_gt_p():
    # n > p: the path runs to lambda_min_ratio 1e-4 unless the fdev rule stops it. glmnet's
    # lognet stops on an ABSOLUTE deviance-ratio change < 1e-5; the relative test stops later
    # here (72 lambdas against glmnet's 64 on this draw).
    import jaxlasso
    from jaxlasso import rglmnet

    rng = np.random.default_rng(11)
    n, p = 300, 30
    X = rng.normal(size=(n, p))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2])))).astype(float)
    r = rglmnet.run_glmnet(X, y, thresh=1e-12)
    fit = jaxlasso.logistic_path(X, y)
    assert fit.early_stopped
    assert len(fit.lambdas) == len(r.lambdas) < 100
    np.testing.assert_allclose(fit.lambdas, r.lambdas, rtol=1e-7)


def test_gaussian_ridge_scale_is_one_over_the_lanes_sd_of_y():
    # glmnet standardises y on each fit's own weights: on the weights y was standardised with
    # the factor is 1; on a fold's it is 1 / that fold's SD. Binomial has none.
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        y = rng.normal(size=20) * 3 + 1
        w = np.full(20, 1 / 20)
        ys = (y - w @ y) / np.sqrt(w @ (y - w @ y) ** 2)
        assert abs(float(GAUSSIAN.ridge_scale(jnp.asarray(ys), jnp.asarray(w), True)) - 1) < 1e-14
        fold = np.where(np.arange(20) < 5, 0.0, 1 / 15)
        sd = np.sqrt(fold @ (ys - fold @ ys) ** 2)
        np.testing.assert_allclose(GAUSSIAN.ridge_scale(jnp.asarray(ys), jnp.asarray(fold), True), 1 / sd,
                                   rtol=1e-14)
        assert BINOMIAL.ridge_scale(jnp.asarray(ys), jnp.asarray(w), True) is None


@dataclasses.dataclass(frozen=True)
class _TreeGaussian(families.Gaussian):
    """Gaussian reading its response from a pytree (a float leaf and an int32 leaf), as a family
    such as Cox carries host-computed indices beside the outcome."""

    name: str = "tree_gaussian"

    @staticmethod
    def _y(y):
        return y["y"] * (y["order"] >= 0)  # uses the int leaf; the values are unchanged

    def null_fit(self, y, w, fit_intercept):
        return families.Gaussian.null_fit(self._y(y), w, fit_intercept)

    def loss_change(self, eta, delta, y, w):
        return families.Gaussian.loss_change(eta, delta, self._y(y), w)

    def residual(self, eta, y, w):
        return families.Gaussian.residual(eta, self._y(y), w)

    def irls_weights(self, eta, y, w):
        return families.Gaussian.irls_weights(eta, self._y(y), w)

    def deviance(self, eta, y, w):
        return families.Gaussian.deviance(eta, self._y(y), w)

    def ridge_scale(self, y, w, fit_intercept):
        return families.Gaussian.ridge_scale(self._y(y), w, fit_intercept)


@pytest.mark.parametrize("mode", ["vmap", "loop"])
def test_a_pytree_response_flows_through_the_engine(mode):
    # Problem.y may be a pytree (integer leaves stay int32), per-lane labels too: the lanes give
    # what the same family gives on a plain array.
    from jaxlasso._engine.lanes import _solve

    rng = np.random.default_rng(5)
    n, p = 24, 30
    X = rng.normal(size=(n, p))
    y = X[:, 0] - X[:, 1] + rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    W = np.ones((3, n))
    W[1, :6] = 0.0
    Y = np.stack([y, y[::-1], y])
    lam = np.geomspace(0.5, 0.05, 8)
    kw = dict(fit_intercept=True, standardize=True, early_stop=False, keep_eta=True,
              is_master=np.zeros(3, bool), tol=1e-9, max_iter=50, max_sweeps=1000, dtype=np.float64, mode=mode)
    plain = _solve(X, Y, W, np.ones(p), 0.7, lam, family=GAUSSIAN, **kw)
    tree = _solve(X, {"y": Y, "order": np.tile(np.arange(n), (3, 1))}, W, np.ones(p), 0.7, lam,
                  family=_TreeGaussian(), **kw)
    np.testing.assert_allclose(tree.eta, plain.eta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tree.intercept, plain.intercept, rtol=1e-12, atol=1e-12)
