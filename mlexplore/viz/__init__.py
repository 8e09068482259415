"""Plotly figures over library results (SPEC §8)."""

from .figures import (basis_over_rdf, error_pdf, error_vs_reference, learning_curves, parity_plot,
                      pca_map, rdf_plot, task_table)

__all__ = ["parity_plot", "error_pdf", "learning_curves", "rdf_plot", "basis_over_rdf", "pca_map",
           "error_vs_reference", "task_table"]
