"""Write the offline Data Docs entry page (``<gx>/index.html``) from what GX keeps in its own store.

It reads the validation results under ``<gx>/uncommitted/validations/<suite>/<run name>/<run time>/<batch>.json``
(the same files GX renders its pages from, so every listed result has its GX page beside it) and the suites under
``<gx>/expectations``. Only the newest ``limit`` results are read: the page is rewritten after every checkpoint.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alphaloom.quality.offline_docs_html import (
    FailedExpectation,
    SuiteEntry,
    ValidationEntry,
    render_offline_index,
)

OFFLINE_INDEX = "index.html"
_SITE = Path("uncommitted") / "data_docs" / "local_site"
_VALIDATIONS = Path("uncommitted") / "validations"


def _href(path: Path, root: Path) -> str:
    return "/".join(quote(part) for part in path.relative_to(root).parts)


def _run_time(meta: dict[str, Any], folder: str) -> datetime | None:
    value = (meta.get("run_id") or {}).get("run_time") or meta.get("validation_time")
    for text, fmt in ((value, None), (folder, "%Y%m%dT%H%M%S.%fZ")):
        if not text:
            continue
        try:
            parsed = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def validation_entry(path: Path, gx_root: Path) -> ValidationEntry:
    """The summary of one result file; an unreadable file gives an entry whose ``error`` says why."""
    rel = path.relative_to(gx_root / _VALIDATIONS)
    suite, run_name, run_folder = (*rel.parts, "", "", "")[:3]
    page = gx_root / _SITE / "validations" / rel.with_suffix(".html")
    href = _href(page, gx_root) if page.is_file() else None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        meta = doc.get("meta") or {}
        stats = doc.get("statistics") or {}
        failed, rows = [], None
        for outcome in doc.get("results") or []:
            config = outcome.get("expectation_config") or {}
            result = outcome.get("result") or {}
            if isinstance(result.get("element_count"), int):
                rows = max(rows or 0, result["element_count"])
            if not outcome.get("success"):
                count = result.get("unexpected_count")
                failed.append(
                    FailedExpectation(
                        type=str(config.get("type") or config.get("expectation_type") or "?"),
                        label=(config.get("meta") or {}).get("label"),
                        unexpected_count=count if isinstance(count, int) else None,
                    )
                )
        return ValidationEntry(
            suite=str(doc.get("suite_name") or suite),
            run_name=str((meta.get("run_id") or {}).get("run_name") or run_name),
            run_time=_run_time(meta, run_folder),
            success=bool(doc.get("success")),
            evaluated=int(stats.get("evaluated_expectations") or 0),
            unsuccessful=int(stats.get("unsuccessful_expectations") or len(failed)),
            rows=rows,
            failed=tuple(failed),
            page=href,
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return ValidationEntry(
            suite=suite, run_name=run_name, run_time=_run_time({}, run_folder), success=False, page=href,
            error=f"{rel.as_posix()}: {type(exc).__name__}: {exc}",
        )  # fmt: skip


def result_files(gx_root: Path) -> list[Path]:
    """Every result file in GX's validation store, newest run first (run-time folders sort by time)."""
    store = gx_root / _VALIDATIONS
    files = [p for p in store.glob("*/*/*/*.json")] if store.is_dir() else []
    return sorted(files, key=lambda p: (p.parent.name, p.as_posix()), reverse=True)


def suite_entries(gx_root: Path) -> list[SuiteEntry]:
    out = []
    for path in sorted((gx_root / "expectations").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            name, count = str(doc.get("name") or path.stem), len(doc.get("expectations") or [])
        except (OSError, ValueError, AttributeError):
            name, count = path.stem, 0
        page = gx_root / _SITE / "expectations" / f"{path.stem}.html"
        out.append(SuiteEntry(name, count, _href(page, gx_root) if page.is_file() else None))
    return out


def write_offline_index(gx_root: Path, *, limit: int = 200, now: datetime | None = None) -> Path:
    """Rewrite ``<gx_root>/index.html`` listing the newest ``limit`` results and every suite; returns its path.

    Written to a temporary file and renamed, so a reader (or a concurrent ingest) never sees half a page."""
    gx_root = Path(gx_root)
    files = result_files(gx_root)
    gx_index = gx_root / _SITE / "index.html"
    page = render_offline_index(
        [validation_entry(p, gx_root) for p in files[:limit]],
        suite_entries(gx_root),
        total_results=len(files),
        gx_index=_href(gx_index, gx_root) if gx_index.is_file() else None,
        generated_at=now or datetime.now(UTC),
    )
    gx_root.mkdir(parents=True, exist_ok=True)
    target = gx_root / OFFLINE_INDEX
    temporary = target.with_name(f".{OFFLINE_INDEX}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, target)
    return target
