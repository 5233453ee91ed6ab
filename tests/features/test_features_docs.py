"""`alphaloom docs`: dbt docs generate writes the catalog and the page; the server answers index.html on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from alphaloom.cli.docs import docs_server, generate_docs


@pytest.fixture(scope="module")
def docs_target(engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_docs(tmp_path_factory.mktemp("dbt-docs"))


def test_docs_generate_writes_catalog_with_documented_feature_columns(docs_target: Path) -> None:
    assert (docs_target / "index.html").is_file()
    manifest = json.loads((docs_target / "manifest.json").read_text())
    features = manifest["nodes"]["model.alphaloom.features"]
    assert features["columns"]["rsi_14"]["description"].startswith("Wilder's RSI")
    assert all(column["description"] for column in features["columns"].values())
    # Lineage: the marts depend on staging.
    assert "model.alphaloom.stg_ohlcv" in features["depends_on"]["nodes"]
    catalog = json.loads((docs_target / "catalog.json").read_text())
    assert "nodes" in catalog and "sources" in catalog
    assert "source.alphaloom.raw.ohlcv" in catalog["sources"]  # the source tables always exist (migrations)


def test_docs_server_answers_index_on_localhost(docs_target: Path) -> None:
    server = docs_server(docs_target, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as response:
            assert response.status == 200
            assert b"dbt" in response.read().lower()
    finally:
        server.shutdown()
        server.server_close()
