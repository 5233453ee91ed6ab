"""The operator-facing files exist and are well-formed: prefect.yaml deployments point at real flows."""

from __future__ import annotations

import importlib

import yaml
from support.paths import ROOT

FLOWS = {"ingest_prices", "ingest_news", "build_features", "decide", "quality_report", "backtest", "protect_positions",
         "walk_forward", "backtest_shards"}  # fmt: skip
MANUAL = {"backtest", "walk_forward", "backtest_shards"}  # run on demand from the UI or CLI, no schedule


def test_prefect_yaml_has_a_deployment_per_flow_pointing_at_a_real_flow() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    found = set()
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert hasattr(flow, "fn"), f"{deployment['entrypoint']} is not a Prefect flow"
        scheduled = deployment.get("schedules") or deployment.get("triggers")
        assert bool(scheduled) == (flow.name not in MANUAL), deployment["name"]
        found.add(flow.name)
    assert found == FLOWS


def test_compose_file_declares_the_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "redis", "prefect-server", "worker"} <= set(compose["services"])


def test_compose_file_declares_a_scalable_dask_cluster_built_from_this_project() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["build"] == worker["build"] == "."  # the image of this project: the workers import its flows
    assert "container_name" not in worker and "ports" not in worker  # `--scale dask-worker=N` needs neither
    assert worker["entrypoint"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert "ALPHALOOM_DATABASE_URL" in worker["environment"]
    assert "ALPHALOOM_DASK_ADDRESS" in services["worker"]["environment"]


def test_every_package_ships_its_py_typed_marker() -> None:
    """PEP 561: each top-level package has ``py.typed`` and declares it as package data, so users' type checkers
    read our annotations."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    data = project["tool"]["setuptools"]["package-data"]
    assert packages == ["alphaloom", "flows", "agents", "execution"]
    for package in packages:
        assert (ROOT / package / "py.typed").is_file(), package
        assert "py.typed" in data.get(package, []), package
