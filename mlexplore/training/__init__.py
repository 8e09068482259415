"""Training engine: :func:`fit`, :func:`predict`, checkpoints, and the ASE calculator."""

from .basis_comparison import compare_bases, format_basis_table
from .calculator import MLExploreCalculator, Potential
from .checkpoint import load_model, save_model
from .ensemble import fit_ensemble, fit_task_members
from .fit import History, TrainingError, fit, predict, resolve_device
from .potential_fit import PotentialFit, evaluate_potential, format_evaluation, train_potential
from .protocols import BASELINES, bag_of_models, fit_baseline, structure_features
from .tasks import (TaskComparisonPlan, TaskRun, compare_tasks, fit_tasks, format_task_table, plan_task_comparison,
                    predict_tasks, summarise_task_runs, task_combinations)

__all__ = ["fit", "predict", "History", "TrainingError", "resolve_device", "save_model", "load_model",
           "Potential", "MLExploreCalculator", "fit_tasks", "predict_tasks", "compare_tasks", "plan_task_comparison",
           "summarise_task_runs", "TaskRun", "TaskComparisonPlan",
           "task_combinations", "format_task_table", "bag_of_models", "fit_baseline", "structure_features",
           "BASELINES", "fit_ensemble", "fit_task_members", "compare_bases", "format_basis_table", "train_potential",
           "evaluate_potential", "format_evaluation", "PotentialFit"]
