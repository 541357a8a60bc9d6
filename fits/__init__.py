"""Scaling-law fits with scipy: power laws, Chinchilla Approaches 1-3 and Kaplan's L(N, D).

Entry point: `fit_table(df, approaches=("2", "3"), bootstrap=..., seed=...) -> FitReport`;
figures (matplotlib, imported lazily) in `fits.plots`. This package imports neither `budget`,
mlflow nor torch.
"""

from fits.approach1 import Approach1Fit, fit_approach1
from fits.approach2 import Approach2Fit, cluster_budgets, fit_approach2
from fits.approach3 import Approach3Fit, chinchilla_loss, fit_approach3
from fits.common import Interval, Optimum, ResidualStats
from fits.data import FitTable, load_csv, prepare_table, read_table
from fits.errors import FitError
from fits.kaplan import KaplanFit, fit_kaplan, kaplan_loss
from fits.powerlaw import PowerLawFit, fit_power_law, power_law
from fits.report import APPROACHES, FitReport, fit_table

__all__ = [
    "APPROACHES", "Approach1Fit", "Approach2Fit", "Approach3Fit", "FitError", "FitReport", "FitTable",
    "Interval", "KaplanFit", "Optimum", "PowerLawFit", "ResidualStats", "chinchilla_loss", "cluster_budgets",
    "fit_approach1", "fit_approach2", "fit_approach3", "fit_kaplan", "fit_power_law", "fit_table",
    "kaplan_loss", "load_csv", "power_law", "prepare_table", "read_table",
]
