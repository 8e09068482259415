"""Widget panels (ipywidgets + plotly), thin views over library calls."""

from .playground import RegressionPlayground

__all__ = ["RegressionPlayground"]
