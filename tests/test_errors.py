"""Bad input to the path and CV APIs: a ValueError/TypeError that says what and how to fix it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import jaxlasso


@pytest.fixture(scope="module")
def ok():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 12))
    y = np.r_[np.zeros(15), np.ones(15)]
    return X, y


def bad_X_nan(X):
    X = X.copy()
    X[4, 2] = np.nan
    return X


def bad_X_inf(X):
    X = X.copy()
    X[1, 0] = np.inf
    return X


@pytest.mark.parametrize("mutate, exc, pattern", [
    (bad_X_nan, ValueError, r"non-finite.*row 4, column 2"),
    (bad_X_inf, ValueError, r"non-finite.*Inf"),
    (lambda X: X[:, :0], ValueError, r"no features"),
    (lambda X: X[0], ValueError, r"2-D"),
    (lambda X: X.astype(str), TypeError, r"numeric"),
    (lambda X: X * 1e200, ValueError, r"too large"),
    (lambda X: np.where(np.arange(12) == 5, 1e308, X), ValueError,
     r"X has 30 value\(s\) too large.*got max \|x\|=1e\+308 at \(row 0, column 5\)"),
    (lambda X: X * 1e-300, ValueError,
     r"X has 12 non-constant column\(s\) whose values are all smaller than 1e-150 in magnitude "
     r"\(first: column 0\).*Multiply X by a large factor"),
    (lambda X: X + 1j, TypeError, r"X must be real-valued"),
    (lambda X: [list(r) for r in X[:-1]] + [list(X[-1, :5])], ValueError,
     r"X is not a rectangular matrix: its rows have different lengths.*got row lengths \[5, 12\]"),
])
def test_bad_X(ok, mutate, exc, pattern):
    X, y = ok
    with pytest.raises(exc, match=pattern):
        jaxlasso.logistic_path(mutate(X), y)


def test_dataframe_with_text_and_duplicate_columns(ok):
    X, y = ok
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)])
    df["g3"] = df["g3"].astype(str)
    with pytest.raises(TypeError, match=r"non-numeric columns.*'g3'"):
        jaxlasso.logistic_path(df, y)
    dup = pd.DataFrame(X, columns=["a"] * 2 + [f"g{j}" for j in range(10)])
    with pytest.raises(ValueError, match=r"duplicated column.*'a'"):
        jaxlasso.logistic_path(dup, y)


@pytest.mark.parametrize("y_bad, exc, pattern", [
    (np.zeros(30), ValueError, r"only one class.*level 0 "),
    (np.arange(30) % 3, ValueError, r"more than two classes.*3 levels"),
    (np.r_[np.zeros(15), np.ones(14)], ValueError, r"different numbers of samples.*len\(y\)=29"),
    (np.r_[np.nan, np.zeros(14), np.ones(15)], ValueError, r"missing label"),
    (np.r_[np.zeros(29), np.ones(1)], ValueError, r"fewer than 2 observations.*1 observation\(s\) of class 1"),
    (np.ones((30, 2)), ValueError, r"1-D"),
])
def test_bad_y(ok, y_bad, exc, pattern):
    X, _ = ok
    with pytest.raises(exc, match=pattern):
        jaxlasso.logistic_path(X, y_bad)


def test_few_per_class_warns_like_glmnet(ok):
    X, _ = ok
    y = np.r_[np.zeros(25), np.ones(5)]
    with pytest.warns(jaxlasso.FewObservationsWarning, match=r"fewer than 8 observations; dangerous ground.*5 observations of class 1"):
        jaxlasso.logistic_path(X, y, n_lambdas=5)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(sample_weight=-np.ones(30)), ValueError, r"non-negative"),
    (dict(sample_weight=np.zeros(30)), ValueError, r"zero for every sample"),
    (dict(sample_weight=np.ones(29)), ValueError, r"one weight per sample"),
    (dict(sample_weight=np.r_[np.nan, np.ones(29)]), ValueError, r"NaN or Inf"),
    (dict(l1_ratio=1.5), ValueError, r"\[0, 1\].*l1_ratio=1.5"),
    (dict(l1_ratio="lasso"), TypeError, r"l1_ratio"),
    (dict(lambdas=[0.1, 0.0]), ValueError, r"positive and finite"),
    (dict(lambdas=[]), ValueError, r"empty"),
    (dict(n_lambdas=0), ValueError, r"n_lambdas must be >= 1"),
    (dict(n_lambdas=2.5), TypeError, r"n_lambdas must be an integer"),
    (dict(lambda_min_ratio=1.5), ValueError, r"lambda_min_ratio must be > 0 and < 1"),
    (dict(penalty_factor=-np.ones(12)), ValueError, r">= 0"),
    (dict(penalty_factor=np.ones(11)), ValueError, r"one value per feature"),
    (dict(penalty_factor=np.full(12, np.inf)), ValueError, r"every feature is excluded"),
    (dict(penalty_factor=np.zeros(12)), ValueError, r"nothing is penalised"),
    (dict(tol=0), ValueError, r"tol must be > 0"),
    (dict(max_iter=0), ValueError, r"max_iter must be >= 1"),
    (dict(dtype="int32"), ValueError, r"float32 or float64"),
])
def test_bad_options(ok, kwargs, exc, pattern):
    X, y = ok
    with pytest.raises(exc, match=pattern):
        jaxlasso.logistic_path(X, y, **kwargs)


def test_all_constant_features(ok):
    _, y = ok
    X = np.ones((30, 5))
    with pytest.raises(ValueError, match=r"lambda_max=0"):
        jaxlasso.logistic_path(X, y)


def test_constant_column_gets_zero_coefficient(ok):
    X, y = ok
    X = X.copy()
    X[:, 3] = 7.0
    fit = jaxlasso.logistic_path(X, y, n_lambdas=10)
    assert fit.excluded[3] and np.all(fit.coef[:, 3] == 0)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(measure="f1"), ValueError, r"measure must be one of"),
    (dict(nfolds=1), ValueError, r"nfolds must be >= 2"),
    (dict(nfolds=40, stratified=False), ValueError, r"nfolds cannot exceed.*n_samples=30"),
    (dict(nfolds=20), ValueError, r"more than the 15 samples of the smaller class"),
    (dict(foldid=np.zeros(30, int)), ValueError, r"at least 2 distinct folds"),
    (dict(foldid=np.arange(29)), ValueError, r"one label per sample"),
    (dict(foldid=np.linspace(0, 1, 30)), TypeError, r"integer fold labels"),
    (dict(foldid=np.r_[-1, np.arange(29) % 3]), ValueError,
     r"foldid must hold fold numbers.*1 label\(s\) are negative.*got foldid values \[-1\]"),
    (dict(foldid=np.r_[-2.0, -1.0, np.arange(28) % 3]), ValueError,
     r"foldid must hold fold numbers.*got foldid values \[-2\.0, -1\.0\]"),
    (dict(n_repeats=0), ValueError, r"n_repeats must be >= 1"),
    (dict(seed=1.5), TypeError, r"seed must be an integer"),
])
def test_bad_cv_options(ok, kwargs, exc, pattern):
    X, y = ok
    with pytest.raises(exc, match=pattern):
        jaxlasso.cv_logistic_path(X, y, **kwargs)


def test_fold_without_a_training_case(ok):
    X, _ = ok
    y = np.r_[np.zeros(27), np.ones(3)]
    foldid = np.r_[np.zeros(27, int) + np.arange(27) % 3, [0, 0, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        with pytest.raises(ValueError, match=r"fold 0 .* leaves no sample of class 1"):
            jaxlasso.cv_logistic_path(X, y, foldid=foldid)


def test_dataframe_names_bytes_complex_nul(ok):
    X, y = ok
    df = pd.DataFrame(X, columns=[f"g{j}".encode() for j in range(12)])
    fit = jaxlasso.logistic_path(df, y, n_lambdas=5)
    assert fit.feature_names == tuple(f"g{j}" for j in range(12))
    bad = df.set_axis([b"\xffg"] + list(df.columns[1:]), axis=1)
    with pytest.raises(ValueError, match=r"X column name 0 is bytes that are not valid UTF-8"):
        jaxlasso.logistic_path(bad, y)
    nul = df.set_axis(["g\x000"] + list(df.columns[1:]), axis=1)
    with pytest.raises(ValueError, match=r"X column name 0 holds a NUL byte"):
        jaxlasso.logistic_path(nul, y)
    cplx = df.astype(complex)
    with pytest.raises(TypeError, match=r"X has complex-valued columns"):
        jaxlasso.logistic_path(cplx, y)


def test_predictions_refuse_what_the_fits_refuse(ok):
    X, y = ok
    cv = jaxlasso.cv_logistic_path(X, y, n_lambdas=8)
    Xn = X.copy()
    Xn[4, 2] = np.nan
    Xi = X.copy()
    Xi[0, 1] = -np.inf
    for predict in (cv.predict_proba, cv.predict, cv.decision_function, cv.path.predict_proba,
                    cv.path.decision_function):
        with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\) \(first is NaN\)"
                                             r".*row 4, column 2"):
            predict(Xn)
        with pytest.raises(ValueError, match=r"first is Inf.*row 0, column 1"):
            predict(Xi)
        with pytest.raises(ValueError, match=r"X has 11 features but the model was fitted on 12"):
            predict(X[:, :11])
        with pytest.raises(ValueError, match=r"X is not a rectangular matrix"):
            predict([list(X[0]), list(X[1, :3])])
    # one row is a valid input; the values match the matrix product
    np.testing.assert_allclose(cv.predict_proba(X[:1]), cv.predict_proba(X)[:1])


def test_predictions_use_dataframe_names(ok):
    X, y = ok
    names = [f"g{j}" for j in range(12)]
    cv = jaxlasso.cv_logistic_path(pd.DataFrame(X, columns=names), y, n_lambdas=8)
    shuffled = pd.DataFrame(X, columns=names)[names[::-1]]
    np.testing.assert_allclose(cv.predict_proba(shuffled), cv.predict_proba(X))
    with pytest.raises(ValueError, match=r"columns are not the features.*missing \['g0'\]"):
        cv.predict_proba(pd.DataFrame(X, columns=["x"] + names[1:]))
