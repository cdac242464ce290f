"""Street-risk forecasting: tomorrow's burglary and theft risk per block (or grid cell).

Pure ML, no orchestrator: units (:mod:`.units`), history arrays (:mod:`.history`), features
(:mod:`.features`), baselines (:mod:`.baselines`), the NIJ measures (:mod:`.metrics`), the
model (:mod:`.model`), training and its gate (:mod:`.training`), a day's forecast
(:mod:`.forecast`), scoring (:mod:`.evaluation`), the artifact (:mod:`.artifact`) and maps
(:mod:`.maps`).
"""
