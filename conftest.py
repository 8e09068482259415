"""Test-session settings shared by tests/ and notebooks/ (run with nbmake).

Notebooks read their size from ``MLEXPLORE_QUICK``: the test run sets it so that CI
executes every notebook small; a person opening the notebook gets the full size.
"""

import os

os.environ.setdefault("MLEXPLORE_QUICK", "1")
