"""The code location the cluster serves: the project's definitions, run in one process per run.

Why a separate module: on the cluster a *run* is the unit of parallelism (one run per Celery
worker process, several workers), so inside a run the in-process executor is right. Dagster's
default multiprocess executor would start a child process per step (about 20 s of overhead per
small run here, GUIDE section 5) on a worker that is already one of several. Everything else
is exactly ``superdan_assets.definitions.defs``; if those ever name an executor themselves,
theirs is kept (``Definitions.merge`` refuses two different executors).
"""

from dagster import Definitions, in_process_executor

# The module, not its ``defs``: Dagster refuses a module with two Definitions at top level.
import superdan_assets.definitions as _project

defs = (
    _project.defs
    if _project.defs.executor is not None
    else Definitions.merge(_project.defs, Definitions(executor=in_process_executor))
)
