"""The offline Data Docs entry page: every validation result and suite in one self-contained HTML page.

GX's own index draws its list with bootstrap-table fetched from a CDN, so it is empty on a machine without internet.
This page has inline CSS, no scripts and nothing fetched; it links (relative paths) to GX's per-result pages, which
keep their content offline. Pure rendering: ``alphaloom.quality.offline_docs`` reads GX's store and writes the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any


@dataclass(frozen=True)
class FailedExpectation:
    """One unsuccessful expectation of a result: GX type, our label (``meta.label``) and rows failing it, if counted."""

    type: str
    label: str | None = None
    unexpected_count: int | None = None


@dataclass(frozen=True)
class ValidationEntry:
    """One validation result from GX's store. ``page`` is the link to GX's page for it, relative to the offline page
    (None when GX has not rendered one); ``error`` says why a result file could not be read (the rest is then empty)."""

    suite: str
    run_name: str
    run_time: datetime | None
    success: bool
    evaluated: int = 0
    unsuccessful: int = 0
    rows: int | None = None
    failed: tuple[FailedExpectation, ...] = field(default_factory=tuple)
    page: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SuiteEntry:
    name: str
    expectations: int
    page: str | None = None


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1240px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 10px;color:#39435a}
.sub{color:#667085;margin-bottom:18px}.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;
padding:14px 16px;margin:0 0 14px}.counts span{display:inline-block;margin-right:18px}.counts b{font-size:18px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eef0f4;
vertical-align:top}th{font-size:11px;text-transform:uppercase;color:#7a8499;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
code{font-size:12px;color:#3a4a6b;overflow-wrap:anywhere}ul.failed{margin:0;padding-left:16px}
.pass{display:inline-block;padding:1px 8px;border-radius:10px;background:#ecfdf3;color:#067647;font-weight:600}
.fail{display:inline-block;padding:1px 8px;border-radius:10px;background:#fef3f2;color:#b42318;font-weight:600}
tr.failed td{background:#fffbfa}.muted{color:#98a2b3}a{color:#3538cd}th.num{text-align:right}
td.batch{min-width:230px}.nowrap{white-space:nowrap}td.failing{min-width:240px}td.link{white-space:nowrap}.scroll{overflow-x:auto}table.narrow{width:auto;min-width:420px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _breakable(value: Any) -> str:
    """Escaped, with line-break chances after ``_``, ``/`` and ``.`` so identifiers wrap between words."""
    return re.sub(r"([_/.])", r"\1<wbr>", _e(value))


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _link(href: str | None, text: str) -> str:
    return f'<a href="{_e(href)}">{_e(text)}</a>' if href else '<span class="muted">no GX page</span>'


def _failed(entry: ValidationEntry) -> str:
    if entry.error:
        return f'<span class="fail">unreadable</span> <code>{_e(entry.error)}</code>'
    if not entry.failed:
        return '<span class="muted">-</span>'
    items = []
    for f in entry.failed:
        name = (
            f"<b>{_e(f.label)}</b><br><code>{_breakable(f.type)}</code>"
            if f.label
            else f"<code>{_breakable(f.type)}</code>"
        )
        count = f.unexpected_count
        rows = (
            "" if count is None else f' <span class="nowrap">&middot; {count:,} row{"" if count == 1 else "s"}</span>'
        )
        items.append(f"<li>{name}{rows}</li>")
    return '<ul class="failed">' + "".join(items) + "</ul>"


def _result_row(entry: ValidationEntry) -> str:
    status = '<span class="pass">passed</span>' if entry.success else '<span class="fail">FAILED</span>'
    rows = "" if entry.rows is None else f"{entry.rows:,}"
    return (
        f'<tr class="{"passed" if entry.success else "failed"}">'
        f'<td class="when">{_e(_when(entry.run_time))}</td><td>{_e(entry.suite)}</td>'
        f'<td class="batch"><code>{_breakable(entry.run_name)}</code></td><td>{status}</td>'
        f'<td class="num">{entry.evaluated}</td><td class="num">{entry.unsuccessful}</td><td class="num">{rows}</td>'
        f'<td class="failing">{_failed(entry)}</td><td class="link">{_link(entry.page, "GX page")}</td></tr>'
    )


def render_offline_index(
    results: Sequence[ValidationEntry],
    suites: Sequence[SuiteEntry],
    *,
    total_results: int,
    gx_index: str | None,
    generated_at: datetime,
) -> str:
    """The page for ``results`` (shown in the order given, newest first by the caller's choice) out of
    ``total_results`` kept by GX, and ``suites``; ``gx_index`` is the relative link to GX's own index."""
    failed = sum(1 for r in results if not r.success)
    shown = len(results)
    more = (
        f'<p class="muted">{total_results - shown:,} older results are not listed here; GX\'s own index has them.</p>'
        if total_results > shown
        else ""
    )
    gx = (
        f"{_link(gx_index, 'GX Data Docs index')} (needs internet for its styles and scripts; without it the list there"
        " is empty, but the per-result pages linked below still show their content)"
        if gx_index
        else "GX has not built its Data Docs yet"
    )
    result_rows = "".join(_result_row(r) for r in results) or (
        '<tr><td colspan="9" class="muted">no validation results yet</td></tr>'
    )
    suite_rows = "".join(
        f'<tr><td>{_link(s.page, s.name) if s.page else _e(s.name)}</td><td class="num">{s.expectations}</td></tr>'
        for s in suites
    ) or ('<tr><td colspan="2" class="muted">no expectation suites yet</td></tr>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>AlphaLoom data quality</title><style>{_CSS}</style></head>
<body><main>
<h1>Data quality: validation results</h1>
<div class="sub">Great Expectations checkpoints on ingested batches &middot; generated {_e(_when(generated_at))} UTC
&middot; {gx}</div>
<div class="card counts"><span><b>{shown:,}</b> results listed</span><span><b>{failed:,}</b> failed</span>
<span><b>{len(suites):,}</b> suites</span></div>
<div class="card"><h2>Validation results (newest first)</h2>
<div class="scroll"><table><thead><tr><th>run time (UTC)</th><th>suite</th><th>batch (run name)</th><th>result</th>
<th class="num">expectations</th><th class="num">failed</th><th class="num">rows</th><th>failing expectations</th><th>details</th></tr></thead>
<tbody>{result_rows}</tbody></table></div>{more}</div>
<div class="card"><h2>Expectation suites</h2>
<table class="narrow"><thead><tr><th>suite</th><th class="num">expectations</th></tr></thead><tbody>{suite_rows}</tbody></table></div>
</main></body></html>
"""
