"""The embedded (one-machine) Dagster instance: SQLite storage that records a long backfill's
events in batches (:mod:`.storage`) and the ``dagster.yaml`` that selects it (:mod:`.home`)."""
