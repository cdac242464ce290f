"""Training defaults the Dagster config shows, in a module that imports nothing heavy.

Why a module of its own: ``assets/training.py`` builds its launchpad config at definition load,
and importing ``ml.training`` there would load scikit-learn and LightGBM (seconds) for every
code-location start.

Measured with ``benchmarks/threshold_window.py`` on validation years only (windows ending
2015-12-31 -> 2016 and 2016-12-31 -> 2017; 2018 never read), see benchmarks/README.md:

* The slice: choosing on the last 28, 56 or 90 days instead of the last 180 did not keep recall
  closer to the policy on the following year; 180 days gave the highest following recall at
  every target (mean over the two years 0.608 at target 0.6, vs 0.592 / 0.582 / 0.600 for
  28 / 56 / 90 days). The most recent days are noisier (fewer burglaries) without being more
  representative of the next year.
* The margin: at target exactly 0.6 the following recall fell to 0.580 in 2017 (0.544 in its
  second quarter): the final model, refitted with the validation slice, ranks the new year
  less well than the validation model ranked its slice. Target 0.65 kept the yearly recall at
  0.685 (2016) and 0.626 (2017) for precision 0.706 / 0.701 (vs 0.722 / 0.721 at 0.6).
"""

#: The decision threshold is chosen on this many most recent labelled days before the holdout.
DEFAULT_THRESHOLD_DAYS = 180
#: Added to the policy's recall on those days, so recall on the following period stays at the
#: policy's level.
DEFAULT_RECALL_MARGIN = 0.05
