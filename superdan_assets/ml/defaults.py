"""Training defaults the Dagster config shows, in a module that imports nothing heavy.

Why a module of its own: ``assets/training.py`` builds its launchpad config at definition load,
and importing ``ml.training`` there would load scikit-learn and LightGBM (seconds) for every
code-location start. Measured in benchmarks/README.md ("threshold_window.py").
"""

#: The decision threshold is chosen on this many most recent labelled days before the holdout.
DEFAULT_THRESHOLD_DAYS = 180
#: Added to the policy's recall on those days, so recall on the following period stays at the
#: policy's level.
DEFAULT_RECALL_MARGIN = 0.0
