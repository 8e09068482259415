"""Training engine and everything built on it.

- :mod:`~mlexplore.training.engine`: the one training loop (:func:`train_loop` over an
  :class:`Objective`), the loss definition, the optimiser, :class:`History`, :data:`DEFAULTS`.
- Entry points over it: :func:`fit` (BP potentials), :func:`fit_tasks` (task models),
  :func:`fit_task_members` / :func:`fit_ensemble` (vectorised members), ``toy.fit_toy``.
- :class:`Potential`: the one object to use a trained model (predict, ASE calculator, save, load).
- Experiments (repeated splits × initialisations × variants): :func:`compare_tasks`,
  :func:`compare_bases`, :func:`bag_of_models`.
- :class:`ActiveLearning`: a committee trained, explored (pool, rattle, MD), selected by its
  uncertainty, labelled and retrained, resumably (:mod:`~mlexplore.training.active_learning`).
"""

from .baselines import BASELINES, fit_baseline, structure_features
from .basis_comparison import BasisComparisonOptions, BasisComparisonPlan, BasisRun, compare_bases, format_basis_table
from .checkpoint import load_model, save_model
from .committee import calibrate_committee, fit_committee
from .engine import DEFAULTS, History, Objective, Output, TrainingError, make_optimizer, resolve_device, train_loop
from .ensemble import fit_ensemble, fit_task_members
from .fit import fit, predict
from .labels import run_label
from .extrapolation import ExtrapolationError, ExtrapolationLog, ExtrapolationWarning
from .potential import MLExploreCalculator, Potential
from .potential_fit import PotentialFit, evaluate_potential, format_evaluation, train_potential
from .experiments import (BagOfModelsPlan, BagRun, ExperimentPlan, ExperimentResult, TaskComparisonOptions,
                          TaskComparisonPlan, TaskRun, bag_of_models, compare_tasks, format_task_table, markdown_table,
                          plan_task_comparison, run_experiment, summarise_task_runs, task_combinations)
from .task_models import fit_tasks, predict_tasks

__all__ = ["fit", "predict", "History", "TrainingError", "resolve_device", "save_model", "load_model",
           "Potential", "MLExploreCalculator", "fit_tasks", "predict_tasks", "compare_tasks", "plan_task_comparison",
           "summarise_task_runs", "TaskRun", "TaskComparisonPlan",
           "task_combinations", "format_task_table", "bag_of_models", "fit_baseline", "structure_features",
           "BASELINES", "fit_ensemble", "fit_task_members", "compare_bases", "format_basis_table", "train_potential",
           "evaluate_potential", "format_evaluation", "PotentialFit", "DEFAULTS", "Objective", "Output",
           "make_optimizer", "train_loop", "run_label", "ExperimentPlan", "ExperimentResult", "run_experiment",
           "TaskComparisonOptions", "BagOfModelsPlan", "BagRun", "markdown_table", "BasisComparisonPlan",
           "BasisComparisonOptions", "BasisRun", "fit_committee", "calibrate_committee", "ExtrapolationWarning",
           "ExtrapolationError", "ExtrapolationLog"]
from .active_learning import (MD, ActiveLearning, DFTLabeller, Pool, Rattle, format_iteration, select,
                              structure_uncertainty)

__all__ += ["ActiveLearning", "Pool", "Rattle", "MD", "DFTLabeller", "select", "structure_uncertainty",
            "format_iteration"]
from .ldos_fit import (LDOS_DEFAULTS, LDOSObjective, LDOSPoints, fit_ldos, ldos_points, predict_ldos,
                       predict_snapshot, refit_output_layer)

__all__ += ["fit_ldos", "predict_ldos", "predict_snapshot", "refit_output_layer", "ldos_points", "LDOSPoints", "LDOSObjective", "LDOS_DEFAULTS"]
