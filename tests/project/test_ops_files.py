"""prefect.yaml through Prefect's own loader, and docker-compose.yml through the docker client when there is one."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from support.paths import ROOT


def _prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_deployments_load_with_prefects_own_model_and_entrypoint_loader() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    model = PrefectYamlModel.model_validate(_prefect_yaml())  # raises on a malformed file
    by_name = {d.name: d for d in model.deployments}
    assert {"ingest-prices", "ingest-news", "build-features", "decide", "quality"} <= set(by_name)
    loaded = {}
    for name, deployment in by_name.items():
        path = deployment.entrypoint.split(":", 1)[0]
        if not (ROOT / path).is_file():  # quality/backtest flows are written in other areas
            continue
        loaded[name] = load_flow_from_entrypoint(str(ROOT / deployment.entrypoint)).name
        assert deployment.work_pool.name == "alphaloom-process", name
    assert loaded["decide"] == "decide" and loaded["build-features"] == "build_features"


def test_schedules_and_parameters_are_what_operators_expect() -> None:
    deployments = {d["name"]: d for d in _prefect_yaml()["deployments"]}
    crons = {name: [s["cron"] for s in d.get("schedules") or []] for name, d in deployments.items()}
    assert crons["ingest-prices"] == ["*/5 * * * *"]
    assert crons["ingest-news"] == ["*/10 * * * *"]
    assert crons["decide"] == ["1 * * * *"]
    assert crons["quality"] == ["15 0 * * *"]
    assert set(deployments["decide"]["parameters"]) == {"symbols", "dry_run"}
    (trigger,) = deployments["build-features"]["triggers"]  # features follow each completed price ingest
    assert trigger["expect"] == ["prefect.flow-run.Completed"]
    assert trigger["match_related"]["prefect.resource.name"] == "ingest_prices"


def test_only_deployments_whose_flow_file_exists_are_deployed() -> None:
    from alphaloom.ops.serve import deployable

    ready, skipped = deployable(ROOT / "prefect.yaml")
    assert "decide" in ready
    for name in skipped:
        entry = next(d for d in _prefect_yaml()["deployments"] if d["name"] == name)["entrypoint"]
        assert not (ROOT / entry.split(":")[0]).exists()


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or the standalone `docker-compose`; both validate a file without an engine."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(_compose_command() is None, reason="no docker compose client on this machine")
def test_docker_compose_config_validates_and_requires_the_password(tmp_path) -> None:
    command = [*(_compose_command() or []), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    ok = subprocess.run([*command, "config", "--quiet"], env={**env, "POSTGRES_PASSWORD": "example"},
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([*command, "config", "--quiet"], env=env, capture_output=True, text=True, timeout=60,
                             cwd=tmp_path)  # fmt: skip
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr
