# glmnet timed the way a user calls it: the data are in the session first, then each repeat is
# one literal call, `glmnet(x, y, family = "binomial", lambda = lam)` or
# `cv.glmnet(x, y, family = "binomial", lambda = lam, foldid = foldid)`, nothing else inside the
# clock. The reference for the benchmark harness (jaxlasso/r/glmnet_bridge.R), which must agree.
#
# Usage: Rscript glmnet_direct.R DIR path|cv REPEATS
# DIR holds x.bin (column-major n x p), y.bin, lambda.bin and for cv foldid.bin, raw little-endian
# float64, plus dims.txt ("n p"); the seconds of each repeat are printed, one per line.
suppressMessages(library(glmnet))
a <- commandArgs(trailingOnly = TRUE)
dir <- a[1]; task <- a[2]; repeats <- as.integer(a[3])
dims <- scan(file.path(dir, "dims.txt"), quiet = TRUE)
n <- dims[1]; p <- dims[2]
bin <- function(name, len) readBin(file.path(dir, name), "double", n = len, endian = "little")
x <- matrix(bin("x.bin", n * p), n, p)
y <- bin("y.bin", n)
lam <- bin("lambda.bin", 1000)
secs <- numeric(repeats)
if (task == "path") {
  for (r in seq_len(repeats)) secs[r] <- system.time(fit <- glmnet(x, y, family = "binomial", lambda = lam))[["elapsed"]]
} else {
  foldid <- as.integer(bin("foldid.bin", n))
  for (r in seq_len(repeats)) {
    secs[r] <- system.time(fit <- suppressWarnings(
      cv.glmnet(x, y, family = "binomial", lambda = lam, foldid = foldid)))[["elapsed"]]
  }
}
cat(secs, sep = "\n")
