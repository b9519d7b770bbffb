"""Gap analysis: finished runs -> tidy results table -> margins with bootstrap intervals -> tables, plots, report."""
