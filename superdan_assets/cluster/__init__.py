"""The production (cluster) deployment's Python parts: the code location it serves, the Celery
app its workers run and the run launcher its daemon uses.

Only the cluster imports this package (``deploy/cluster/``, ``scripts/cluster.sh``); it needs the
``cluster`` extra (dagster-postgres, dagster-celery, redis, psycopg2).
"""
