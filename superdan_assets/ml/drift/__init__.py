"""One day's data, predictions and realised performance against the training reference.

Pure numpy/pandas/scipy (no Dagster, no scikit-learn import), so the daily ``drift_report``
asset, a notebook and the tests all compute the same thing in well under a second.

One module per job:

* :mod:`.features`: the drift features of a day's rows; :mod:`.distances`: PSI,
  Jensen-Shannon and Wasserstein distances; :mod:`.performance`: realised metrics with
  bootstrap intervals; :mod:`.config`: thresholds and the verdicts.
* :mod:`.profile`, :class:`ReferenceProfile`: a compact summary of the reference period (the
  model's held-out evaluation rows are the honest choice), computed once and saved as JSON:
  per numeric feature its quantile function, PSI bins and scale; per categorical feature its
  category shares (rare ones pooled); the prediction distribution; the label share; the
  reference metrics. A day's report never reloads the training set.
* :mod:`.feature_drift`: one feature's drift (numeric: Wasserstein distance normalised by the
  reference's std, and PSI on reference-quantile bins; categorical: Jensen-Shannon distance
  with unseen categories pooled).
* :mod:`.report`, :func:`drift_report`: the share of drifted features, prediction drift,
  label-share drift, realised ROC-AUC / PR-AUC / precision / recall at the decision threshold
  with seeded bootstrap intervals, the same broken down by police district, and a verdict
  OK / WARN / ALERT with reasons a person can act on.

Results are typed (:class:`DriftReport`, :class:`FeatureDrift` with :class:`NumericDetails` or
:class:`CategoricalDetails`, :class:`Performance` of :class:`MetricInterval`,
:class:`LabelShareDrift`, :class:`DistrictPerformance`); ``DriftReport.to_dict`` is the stored
JSON form and ``DriftReport.from_dict`` reads it back.

Why a noise floor: Evidently's default threshold (0.1) assumes large samples. A day has ~250
labelled rows; with 23 districts the Jensen-Shannon distance of a perfectly stable day is
already ~0.1 from sampling alone, and a 300-category feature like ``beat`` far more. Real days
also vary more than independent samples would (a weekend, one busy block, a series by one
offender). So each feature's threshold is the largest of: the configured threshold; the
``noise_quantile`` of the statistic over samples of today's size drawn from the reference; and
the same quantile of the statistic over the reference period's own days (measured when the
profile is built, rescaled by sqrt(reference day size / today's size)). A feature drifts only
when the change is material *and* larger than ordinary days of the reference period show. The
same daily null guards the label-share and performance verdicts. Measured on the 315 days of
2018 against a 2017 reference: with i.i.d. sampling noise only, 8 of the 30 days of June were
flagged; with the daily nulls, the project's LightGBM pipeline (trained on 2015-2016) gives 303
OK, 12 WARN, 0 ALERT (a simple location-rate scorer: 301 / 13 / 1), while days with shifted
locations and times, broken predictions or flipped labels are ALERTs.
"""

from superdan_assets.ml.drift.config import ALERT, LEVELS, OK, WARN, DriftConfig
from superdan_assets.ml.drift.distances import EPSILON, jensen_shannon_distance, psi
from superdan_assets.ml.drift.feature_drift import (
    CategoricalDetails,
    FeatureDrift,
    NumericDetails,
    categorical_drift,
    numeric_drift,
)
from superdan_assets.ml.drift.features import (
    CATEGORICAL_FEATURES,
    MISSING,
    NUMERIC_FEATURES,
    OTHER,
    drift_features,
)
from superdan_assets.ml.drift.performance import (
    METRICS,
    DistrictPerformance,
    MetricInterval,
    Performance,
    average_precision,
    performance,
    roc_auc,
)
from superdan_assets.ml.drift.profile import (
    PROFILE_VERSION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_reference_profile,
    categorical_profile,
    numeric_profile,
)
from superdan_assets.ml.drift.report import DriftReport, LabelShareDrift, drift_report

__all__ = [
    "ALERT",
    "CATEGORICAL_FEATURES",
    "EPSILON",
    "LEVELS",
    "METRICS",
    "MISSING",
    "NUMERIC_FEATURES",
    "OK",
    "OTHER",
    "PROFILE_VERSION",
    "WARN",
    "CategoricalDetails",
    "CategoricalProfile",
    "DistrictPerformance",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "LabelShareDrift",
    "MetricInterval",
    "NumericDetails",
    "NumericProfile",
    "Performance",
    "ReferenceProfile",
    "average_precision",
    "build_reference_profile",
    "categorical_drift",
    "categorical_profile",
    "drift_features",
    "drift_report",
    "jensen_shannon_distance",
    "numeric_drift",
    "numeric_profile",
    "performance",
    "psi",
    "roc_auc",
]
