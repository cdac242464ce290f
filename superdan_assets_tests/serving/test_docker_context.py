"""The image's build stage copies everything ``pip install .`` needs (no Docker engine here)."""

import re
import tomllib

from superdan_assets_tests.serving.conftest import REPO_ROOT


def _copied_sources() -> set[str]:
    sources = set()
    for line in (REPO_ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"^COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            sources.update(match.group(1).split())
    return sources


def test_every_copied_path_exists_and_is_not_dockerignored():
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for source in _copied_sources():
        assert (REPO_ROOT / source).exists(), f"Dockerfile copies missing {source}"
        assert source not in ignored, f"{source} is copied but excluded by .dockerignore"


def test_build_stage_has_what_the_package_metadata_names():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    needed = {"pyproject.toml", project["readme"], *project.get("license-files", [])}
    needed.update(p.split(".")[0] for p in ("superdan_assets",))
    assert needed <= _copied_sources()
