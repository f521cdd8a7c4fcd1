# Reference values for jaxlasso.survival_stats from R's survival package and stats::cor.test.
# Usage: Rscript survival_stats.R INPUT.tsv OUTPUT.tsv
#   INPUT: columns time, event, group, then gene columns (any names).
#   OUTPUT: one line per quantity, "name<TAB>value<TAB>value...", full precision.
# The golden pair survival_stats_input.tsv / survival_stats_r.tsv was made with
#   Rscript survival_stats.R survival_stats_input.tsv survival_stats_r.tsv
# (R 4, survival 3.5); tests/test_survival_stats.py also runs it live on fresh data (marker r).
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.delim(args[1], check.names = FALSE)
genes <- setdiff(colnames(d), c("time", "event", "group"))
out <- file(args[2], "w")
put <- function(name, v) writeLines(paste(c(name, sprintf("%.17g", as.numeric(v))), collapse = "\t"), out)
f <- survfit(Surv(time, event) ~ 1, data = d)
put("km_time", f$time); put("km_n_risk", f$n.risk); put("km_n_event", f$n.event)
put("km_surv", f$surv); put("km_std_err", f$std.err)
put("km_median", summary(f)$table["median"])
s <- survdiff(Surv(time, event) ~ group, data = d)
put("logrank_chisq", s$chisq); put("logrank_obs", s$obs); put("logrank_exp", s$exp)
score <- sapply(genes, function(g) coxph(Surv(d$time, d$event) ~ d[[g]], ties = "breslow")$score)
put("cox_score", score)
put("pearson_p", sapply(genes, function(g) cor.test(d[[g]], d$time)$p.value))
put("pearson_r", sapply(genes, function(g) cor(d[[g]], d$time)))
close(out)
