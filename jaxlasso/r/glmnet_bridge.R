# Run R glmnet on a job written by jaxlasso.rglmnet (parity tests, golden files, benchmarks).
#
# Usage: Rscript glmnet_bridge.R JOBDIR
# JOBDIR/job.dcf holds the settings; the arrays are raw little-endian float64 files
# (x.bin is column-major n x p). Outputs are written back into JOBDIR.
suppressMessages(library(glmnet))
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
n <- num("n"); p <- num("p")
x <- matrix(rd("x.bin", n * p), n, p)
y <- rd("y.bin", n)
family <- if (is.null(job$family)) "binomial" else job$family
args_fit <- list(x = x, y = y, family = family, alpha = num("alpha", 1),
                 thresh = num("thresh", 1e-7), maxit = num("maxit", 1e5),
                 standardize = flag("standardize"), intercept = flag("intercept"))
if (flag("has_lambda")) args_fit$lambda <- rd("lambda.bin", num("n_lambda")) else args_fit$nlambda <- num("nlambda", 100)
if (!is.null(job$lambda_min_ratio)) args_fit$lambda.min.ratio <- num("lambda_min_ratio")
if (flag("has_weights")) args_fit$weights <- rd("weights.bin", n)
if (flag("has_penalty_factor")) args_fit$penalty.factor <- rd("pf.bin", p)
if (!is.null(job$fdev) || !is.null(job$devmax)) {
  glmnet.control(fdev = num("fdev", 1e-5), devmax = num("devmax", 0.999))
}
# The timed call is the call a user's script makes, `glmnet(x = x, y = y, ...)` with each value
# bound to its name in an environment, not `do.call(glmnet, args)` with the values inside the
# call object (glmnet keeps its call in the fit). benchmarks/glmnet_direct.R is the reference
# that tests/test_benchmark_tools.py holds these times to.
literal_call <- function(fun, args) {
  cl <- as.call(c(list(as.name(fun)), sapply(names(args), as.name, simplify = FALSE)))
  env <- list2env(args, parent = globalenv())
  function() eval(cl, env)
}
repeats <- num("repeats", 1)
task <- job$task
times <- numeric(repeats)
if (task == "path") {
  fit_once <- literal_call("glmnet", args_fit)
  for (r in seq_len(repeats)) times[r] <- system.time(fit <- fit_once())[["elapsed"]]
  b <- as.matrix(coef(fit))  # (p + 1) x L, intercept first
  wr("coef.bin", b)
  wr("lambda_out.bin", fit$lambda)
  wr("dev_ratio.bin", fit$dev.ratio)
  wr("nulldev.bin", fit$nulldev)
} else if (task == "cv") {
  args_fit$type.measure <- job$type_measure
  if (flag("has_foldid")) args_fit$foldid <- as.integer(rd("foldid.bin", n)) else args_fit$nfolds <- num("nfolds", 10)
  fit_once <- literal_call("cv.glmnet", args_fit)
  for (r in seq_len(repeats)) times[r] <- system.time(cv <- fit_once())[["elapsed"]]
  wr("lambda_out.bin", cv$lambda)
  wr("cvm.bin", cv$cvm)
  wr("cvsd.bin", cv$cvsd)
  wr("nzero.bin", cv$nzero)
  wr("index.bin", c(cv$index[1], cv$index[2]))
  wr("coef.bin", as.matrix(coef(cv$glmnet.fit)))
} else if (task == "bootstrap") {
  # One path per row of the weight matrix (n_sets x n, row-major on disk), timed as one loop.
  sets <- num("n_sets")
  W <- matrix(rd("weight_sets.bin", sets * n), nrow = sets, byrow = TRUE)
  nnz <- numeric(0)
  for (r in seq_len(repeats)) {
    fits <- lapply(seq_len(sets), function(s) {
      a <- args_fit
      a$weights <- W[s, ]
      literal_call("glmnet", a)
    })
    times[r] <- system.time(for (s in seq_len(sets)) {
      fit <- fits[[s]]()
      if (r == 1) nnz <- c(nnz, sum(fit$df))
    })[["elapsed"]]
  }
  wr("lambda_out.bin", args_fit$lambda)
  wr("nnz.bin", nnz)
  wr("coef.bin", numeric((p + 1) * length(args_fit$lambda)))
} else {
  stop(paste("unknown task", task))
}
wr("times.bin", times)
cat(as.character(packageVersion("glmnet")), file = file.path(dir, "version.txt"))
