"""Plotly figures over library results (SPEC §8), per-atom colours for structure views, and
self-contained HTML reports."""

from .colors import element_colors, to_hex, value_colors
from .figures import (angular_shapes, basis_over_rdf, cutoff_shapes, energy_volume_plot, error_pdf, error_vs_reference,
                      learning_curves,
                      parity_plot, pca_map, rdf_plot, task_error_pdfs, task_table)
from .report import html_report

__all__ = ["parity_plot", "error_pdf", "learning_curves", "rdf_plot", "basis_over_rdf", "cutoff_shapes",
           "angular_shapes", "pca_map", "error_vs_reference", "energy_volume_plot", "task_table", "task_error_pdfs", "element_colors",
           "value_colors", "to_hex", "html_report"]
