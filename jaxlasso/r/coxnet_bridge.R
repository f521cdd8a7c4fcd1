# Run R glmnet(family = "cox") / cv.glmnet / survival::coxph on a job written by
# jaxlasso.rglmnet.run_coxnet (parity tests, golden files, benchmarks).
#
# Usage: Rscript coxnet_bridge.R JOBDIR
# JOBDIR/job.dcf holds the settings; the arrays are raw little-endian float64 files
# (x.bin is column-major n x p; time.bin, status.bin). Outputs are written back into JOBDIR.
# Task "coxexample" writes glmnet's own data(CoxExample) instead of reading data.
suppressMessages(library(glmnet))
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
job <- as.list(read.dcf(file.path(dir, "job.dcf"))[1, ])
num <- function(key, default = NULL) if (is.null(job[[key]])) default else as.numeric(job[[key]])
flag <- function(key) !is.null(job[[key]]) && toupper(job[[key]]) %in% c("TRUE", "YES", "1")
rd <- function(name, len) {
  con <- file(file.path(dir, name), "rb"); on.exit(close(con))
  readBin(con, "double", n = len, endian = "little")
}
wr <- function(name, x) {
  con <- file(file.path(dir, name), "wb"); on.exit(close(con))
  writeBin(as.double(x), con, endian = "little")
}
task <- job$task
if (task == "coxexample") {
  data(CoxExample)
  wr("x.bin", CoxExample$x)
  wr("time.bin", CoxExample$y[, "time"])
  wr("status.bin", CoxExample$y[, "status"])
  wr("dim.bin", dim(CoxExample$x))
  cat(as.character(packageVersion("glmnet")), file = file.path(dir, "version.txt"))
  quit(save = "no")
}
n <- num("n"); p <- num("p")
x <- matrix(rd("x.bin", n * p), n, p)
y <- cbind(time = rd("time.bin", n), status = rd("status.bin", n))
weights <- if (flag("has_weights")) rd("weights.bin", n) else rep(1, n)
repeats <- num("repeats", 1)
times <- numeric(repeats)
# The timed call is the call a user's script makes, `glmnet(x = x, y = y, ...)` with each value
# bound to its name (as glmnet_bridge.R does), not do.call() with the data inside the call object.
literal_call <- function(fun, args) {
  cl <- as.call(c(list(as.name(fun)), sapply(names(args), as.name, simplify = FALSE)))
  env <- list2env(args, parent = globalenv())
  function() eval(cl, env)
}
if (task == "coxph") {
  # Unpenalised fit with the tie rule asked for (lambda = 0 reference).
  fit <- coxph(Surv(y[, "time"], y[, "status"]) ~ x, ties = job$ties, weights = weights,
               control = coxph.control(eps = 1e-12, iter.max = 100))
  wr("coef.bin", coef(fit))
  wr("loglik.bin", fit$loglik)
} else {
  args_fit <- list(x = x, y = y, family = "cox", alpha = num("alpha", 1),
                   thresh = num("thresh", 1e-7), maxit = num("maxit", 1e5),
                   standardize = flag("standardize"), weights = weights)
  if (flag("has_lambda")) args_fit$lambda <- rd("lambda.bin", num("n_lambda")) else args_fit$nlambda <- num("nlambda", 100)
  if (!is.null(job$lambda_min_ratio)) args_fit$lambda.min.ratio <- num("lambda_min_ratio")
  if (flag("has_penalty_factor")) args_fit$penalty.factor <- rd("pf.bin", p)
  if (!is.null(job$fdev) || !is.null(job$devmax)) {
    glmnet.control(fdev = num("fdev", 1e-5), devmax = num("devmax", 0.999))
  }
  if (task == "path") {
    fit_once <- literal_call("glmnet", args_fit)
    for (r in seq_len(repeats)) times[r] <- system.time(fit <- fit_once())[["elapsed"]]
    wr("coef.bin", as.matrix(coef(fit)))  # p x L
    wr("lambda_out.bin", fit$lambda)
    wr("dev_ratio.bin", fit$dev.ratio)
    wr("nulldev.bin", fit$nulldev)
  } else if (task == "cv") {
    args_fit$type.measure <- job$type_measure
    args_fit$grouped <- flag("grouped")
    args_fit$foldid <- as.integer(rd("foldid.bin", n))
    fit_once <- literal_call("cv.glmnet", args_fit)
    for (r in seq_len(repeats)) times[r] <- system.time(cv <- fit_once())[["elapsed"]]
    wr("lambda_out.bin", cv$lambda)
    wr("cvm.bin", cv$cvm)
    wr("cvsd.bin", cv$cvsd)
    wr("nzero.bin", cv$nzero)
    wr("index.bin", c(cv$index[1], cv$index[2]))
    wr("coef.bin", as.matrix(coef(cv$glmnet.fit)))
    # Each fold's fit, refitted as cv.glmnet.raw fits it (its training rows, the full fit's
    # lambdas): the held-out measures can then be checked apart from the solver.
    if (flag("fold_coef")) {
      fold_args <- args_fit[setdiff(names(args_fit), c("type.measure", "grouped", "foldid"))]
      fold_args$lambda <- cv$lambda
      fold_args$nlambda <- NULL
      fc <- c()
      for (f in seq_len(max(args_fit$foldid))) {
        keep <- args_fit$foldid != f
        a <- fold_args
        a$x <- x[keep, , drop = FALSE]; a$y <- y[keep, , drop = FALSE]; a$weights <- weights[keep]
        fc <- c(fc, as.matrix(coef(do.call(glmnet, a))))
      }
      wr("fold_coef.bin", fc)
    }
  } else {
    stop(paste("unknown task", task))
  }
}
wr("times.bin", times)
cat(as.character(packageVersion("glmnet")), file = file.path(dir, "version.txt"))
