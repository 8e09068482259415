"""Deprecated: the STL/MTL comparison moved to :mod:`mlexplore.training.experiments` (the plan, the
driver and the result type) and the task-model training to :mod:`mlexplore.training.task_models`.
This module re-exports their names for one release."""

from __future__ import annotations

import warnings

from .experiments import (ExperimentResult, TaskComparisonOptions, TaskComparisonPlan, TaskRun, compare_tasks,
                          format_task_table, plan_task_comparison, summarise_task_runs, task_combinations)
from .task_models import fit_tasks, predict_tasks

__all__ = ["fit_tasks", "predict_tasks", "compare_tasks", "task_combinations", "format_task_table", "TaskRun",
           "TaskComparisonPlan", "TaskComparisonOptions", "ExperimentResult", "plan_task_comparison",
           "summarise_task_runs"]

warnings.warn("mlexplore.training.tasks is deprecated: import compare_tasks, plan_task_comparison, TaskRun, "
              "TaskComparisonPlan, summarise_task_runs, task_combinations and format_task_table from "
              "mlexplore.training.experiments, fit_tasks and predict_tasks from mlexplore.training.task_models "
              "(or all of them from mlexplore.training)", DeprecationWarning, stacklevel=2)
