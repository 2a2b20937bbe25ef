"""`piop report RESULTS_DIR`: a self-contained Markdown (and optionally HTML) report.

Reads the finished run folders of one experiment (`results/<experiment>/<run>/`) and
writes `RESULTS_DIR/report/report.md` with its images beside it:

- the policy comparison (bars of each metric's mean with its CI over seeds, the table,
  paired differences against the baseline, the split per workload kind);
- impact distributions (CDF while backups run, and the share of production I/O above each
  impact level);
- restore-point-age timelines with the backup jobs drawn over the production load, the
  same volumes and seed under every policy;
- forecast against actual load with the forecaster's quantile band, for runs that saved
  forecast series (`forecast.parquet`, see `load_forecast`; skipped otherwise);
- the Pareto front and chosen trial of each tuning study under `RESULTS_DIR/tune/`;
- the decision log summarised (actions and reasons per policy, job statistics).

Every figure has a title, axis units and a legend; every number is in its metric's
display unit (`experiments.metrics`). The header describes what ran from the run
folders themselves and names the command that made them. Modules: `load` (run
folders), `facts` (what ran), `fig_compare`, `fig_impact`, `fig_timeline`, `forecast`,
`pareto` (figures), `decisions`, `markdown`, `html`, `sections` and `build`.
"""

from experiments.report.build import Report, build_report
from experiments.report.decisions import decision_summary
from experiments.report.fig_compare import comparison_bars, paired_forest
from experiments.report.fig_impact import impact_cdfs
from experiments.report.fig_timeline import timelines
from experiments.report.forecast import FORECAST_FILES, forecast_plots, load_forecast
from experiments.report.html import to_html
from experiments.report.load import ResultsSet, Run, comparison, load_runs, run_rows, tuning_studies
from experiments.report.markdown import md_table
from experiments.report.pareto import pareto_png
from experiments.report.style import policy_colours

__all__ = [
    "FORECAST_FILES",
    "Report",
    "ResultsSet",
    "Run",
    "build_report",
    "comparison",
    "comparison_bars",
    "decision_summary",
    "forecast_plots",
    "impact_cdfs",
    "load_forecast",
    "load_runs",
    "md_table",
    "paired_forest",
    "pareto_png",
    "policy_colours",
    "run_rows",
    "timelines",
    "to_html",
    "tuning_studies",
]
