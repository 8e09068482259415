"""Plotly figures over library results (SPEC §8)."""

from .figures import basis_over_rdf, error_pdf, error_pdf_band, learning_curves, parity_plot, pca_map, rdf_plot

__all__ = ["parity_plot", "error_pdf", "error_pdf_band", "learning_curves", "rdf_plot", "basis_over_rdf", "pca_map"]
