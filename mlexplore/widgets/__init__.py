"""Widget panels (ipywidgets + plotly + nglview), thin views over library calls.

- :class:`BasisTuner` — tune radial/angular bases over the RDF, with the PCA map of the features.
- :class:`StructureViewer` — browse structures coloured by any per-atom quantity, with arrows.
- :class:`PDFViewer` — RDFs of datasets side by side, error PDFs of models with ensemble bands.
- :class:`TaskComparison` — train STL and MTL models live and compare them.
- :class:`RegressionPlayground` — NN regression essentials (002 ch. 2).
- :class:`SpinMonteCarloPanel` — spin Monte Carlo of a lattice with a spin-aware potential, live.
- :class:`LDOSExplorer` — a density plane (DFT, prediction, error) and the LDOS at a clicked point.
"""

from .basis_tuner import BasisTuner
from .ldos_explorer import LDOSExplorer
from .pdf_viewer import PDFViewer
from .playground import RegressionPlayground
from .structure_viewer import StructureViewer
from .spin_monte_carlo import SpinMonteCarloPanel
from .task_comparison import TaskComparison

__all__ = ["BasisTuner", "StructureViewer", "PDFViewer", "TaskComparison", "RegressionPlayground",
           "SpinMonteCarloPanel", "LDOSExplorer"]
