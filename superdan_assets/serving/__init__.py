"""The inference server and the container entrypoints (``superdan serve`` / ``superdan train``).

Nothing here imports Dagster: the endpoint and the SageMaker container run without the
orchestrator. This package's ``__init__`` imports nothing heavy either, because the serving
process must pin the numeric libraries to one thread *before* numpy is first imported (see
:mod:`superdan_assets.serving.threads`).

Modules, one job each:

- ``threads``: one thread per worker for OpenMP/BLAS, set before numpy loads;
- ``settings``: the SageMaker ``SAGEMAKER_*`` environment, read and checked once;
- ``protocol``: content negotiation and body decoding (JSON / CSV -> incident columns);
- ``incidents``: validated incident columns -> the canonical frame the model takes;
- ``responses``: predictions and errors as JSON or CSV bytes;
- ``batching``: micro-batching of concurrent requests into one model call;
- ``metrics``: Prometheus counters shared by all worker processes;
- ``app``: the ASGI application (``/ping``, ``/invocations``, ``/metrics``);
- ``supervisor``: the pre-fork master that loads the model, binds and runs the workers;
- ``training_job``: the SageMaker training entrypoint.
"""
