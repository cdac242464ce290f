"""W&B experiment tracking, called directly (``dagster-wandb`` breaks with wandb >= 0.30).

One W&B run per training: config (window, hyper-parameters), metrics of the model and the
baselines, the plots, and the model artifact. The mode comes from ``WANDB_MODE`` unless set
here: ``offline`` (the default: runs are written under ``dir`` and can be synced later with
``wandb sync``), ``online`` (needs ``WANDB_API_KEY`` in the environment, read by wandb itself,
never by superdan), or ``disabled`` (tests).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field


@dataclass
class TrackedRun:
    """What the Dagster metadata records about a W&B run (no secrets)."""

    mode: str
    run_id: str | None
    url: str | None
    directory: str | None


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}/{key}" if prefix else str(key), inner, out)
    elif isinstance(value, bool | int | float):
        out[prefix] = float(value)


class ExperimentTracker(ConfigurableResource):
    """Logs a training run to Weights & Biases."""

    project: str = Field(default="superdan", description="W&B project")
    entity: str | None = Field(default=None, description="W&B entity (team); None = default")
    mode: str | None = Field(
        default=None, description="'offline', 'online' or 'disabled'; None reads WANDB_MODE"
    )
    directory: str = Field(default=".superdan/wandb", description="Where offline runs go")

    def resolved_mode(self) -> str:
        mode = self.mode or os.environ.get("WANDB_MODE") or "offline"
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"W&B mode {mode!r} is not 'offline', 'online' or 'disabled'")
        if mode == "online" and not os.environ.get("WANDB_API_KEY"):
            raise ValueError(
                "W&B mode is 'online' but WANDB_API_KEY is not set; set it, or use "
                "WANDB_MODE=offline (runs are kept locally and can be synced later)"
            )
        return mode

    def log_training(
        self,
        name: str,
        config: dict[str, Any],
        metrics: dict[str, Any],
        plots: dict[str, bytes],
        artifact_dir: str | os.PathLike | None,
        artifact_name: str = "crime-model",
    ) -> TrackedRun:
        mode = self.resolved_mode()
        if mode == "disabled":
            return TrackedRun(mode=mode, run_id=None, url=None, directory=None)
        import wandb
        from PIL import Image

        Path(self.directory).mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=name,
            job_type="train",
            config=config,
            mode=mode,
            dir=self.directory,
            settings=wandb.Settings(silent=True, console="off"),
        )
        try:
            flat: dict[str, float] = {}
            _flatten("", metrics, flat)
            images = {k: wandb.Image(Image.open(io.BytesIO(v))) for k, v in plots.items()}
            run.log({**flat, **images})
            run.summary.update(flat)
            if artifact_dir is not None:
                artifact = wandb.Artifact(
                    artifact_name, type="model", metadata={"version": config.get("version")}
                )
                artifact.add_dir(str(artifact_dir))
                run.log_artifact(artifact, aliases=[str(config.get("version", "latest"))])
            return TrackedRun(
                mode=mode,
                run_id=run.id,
                url=getattr(run, "url", None) if mode == "online" else None,
                directory=str(Path(run.dir).parent) if getattr(run, "dir", None) else None,
            )
        finally:
            run.finish()
