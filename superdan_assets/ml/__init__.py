"""Pure ML logic: schema, labels, features, model, metrics, drift. No Dagster import.

OpenMP reads its wait policy once, when the first library that links it (scikit-learn,
LightGBM) loads. With the default (active spinning), multi-threaded gradient boosting ran
25-800x slower on small shared machines (GUIDE section 5), so it is set here, before any
``superdan_assets.ml`` module can import them; an explicit choice of the caller is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
