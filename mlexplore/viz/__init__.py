"""Plotly figures over library results (SPEC §8), uncertainty figures (committee spread, calibration),
per-atom colours for structure views, and self-contained HTML reports."""

from .colors import element_colors, to_hex, value_colors
from .figures import (angular_shapes, basis_over_rdf, cutoff_shapes, energy_volume_plot, error_pdf, error_vs_reference,
                      learning_curves,
                      parity_plot, pca_map, rdf_plot, task_error_pdfs, task_table)
from .comparison import task_error_bands, task_parity
from .report import (comparison_report, comparison_summary, evaluation_report, featurisation_report, html_report,
                     parity_blocks, training_report, training_summary)

__all__ = ["parity_plot", "error_pdf", "learning_curves", "rdf_plot", "basis_over_rdf", "cutoff_shapes",
           "angular_shapes", "pca_map", "error_vs_reference", "energy_volume_plot", "task_table", "task_error_pdfs", "task_parity", "task_error_bands", "element_colors",
           "value_colors", "to_hex", "html_report"]
from .descriptors import environment_colorings, environment_map
from .distributions import error_pdf_bands, rdf_comparison
from .toy import toy_fit_figure, toy_loss_figure

__all__ += ["environment_map", "environment_colorings", "rdf_comparison", "error_pdf_bands", "toy_fit_figure",
            "toy_loss_figure"]
__all__ += ["parity_blocks", "training_report", "evaluation_report", "comparison_report", "featurisation_report",
            "training_summary", "comparison_summary"]
from .uncertainty import (UNCERTAINTY_QUANTITIES, CalibrationCurve, atom_uncertainties, calibration_curve,
                          calibration_figure, parity_with_errors, uncertainty_colors)

__all__ += ["parity_with_errors", "calibration_curve", "calibration_figure", "CalibrationCurve",
            "atom_uncertainties", "uncertainty_colors", "UNCERTAINTY_QUANTITIES"]
from .spins import magnetisation_curve, relaxed_magnetisation, spin_traces

__all__ += ["spin_traces", "magnetisation_curve", "relaxed_magnetisation"]
from .ldos import density_slice, dos_figure

__all__ += ["dos_figure", "density_slice"]
