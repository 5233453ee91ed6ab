"""The operator console over a demo-like run: every endpoint over HTTP (auth, CSRF, actions recorded, no secret shown)
and a real headless Chromium driving it (log in, positions, decisions, explain, kill switch live, then no order)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from alphaloom.cli import app as cli_app
from alphaloom.cli.console import cancel_open_orders_hook
from alphaloom.console.actions import ConsoleActions
from alphaloom.console.app import COOKIE, ConsoleConfig, create_app
from alphaloom.console.auth import set_password
from alphaloom.ingest.sampledata import DEFAULT_END, SampleData, generate
from alphaloom.ops.kill_switch import kill_switch_state, set_kill_switch
from alphaloom.ops.serve import free_port
from alphaloom.settings import Settings, get_settings
from flows.build_features import build_features
from flows.decide import decide_flow
from flows.ingest_news import ingest_news
from flows.ingest_prices import ingest_prices

STEPS = 48
EXCHANGE = "console-demo"
USER, PASSWORD = "alice", "correct horse battery"
LLM_KEY = "sk-console-test-secret-0123456789"
WEBHOOK_TOKEN = "hook-token-abcdef987654"


@dataclass
class Demo:
    data: SampleData
    settings: Settings
    decision_id: str
    order_id: str


@pytest.fixture(scope="module")
def demo(engine: Engine, prefect_harness, tmp_path_factory) -> Iterator[Demo]:
    # Its own exchange, account and stretch of time (so its own news URLs): the session database is shared with the
    # pipeline and news tests, which count the bars and stories their own runs added.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHALOOM_EXCHANGE", EXCHANGE)
        mp.setenv("ALPHALOOM_ACCOUNT", "console-paper")
        get_settings.cache_clear()
        yield from _demo(engine, tmp_path_factory)
    get_settings.cache_clear()


def _demo(engine: Engine, tmp_path_factory) -> Iterator[Demo]:
    data = generate(Path(tmp_path_factory.mktemp("console")), seed=11, days=45, exchange=EXCHANGE,
                    end=DEFAULT_END - timedelta(days=120))  # fmt: skip
    for state in (
        ingest_prices([str(p) for p in data.price_files], return_state=True),
        ingest_news([str(p) for p in data.news_files], return_state=True),
        build_features(return_state=True),
        # Up to two days before the end: the run holds positions then (the later steps, which close them, are left
        # for the browser test to try with the kill switch on).
        decide_flow(
            symbols=list(data.symbols), as_of=data.end - timedelta(hours=STEPS), steps=STEPS, return_state=True
        ),
    ):
        assert state.is_completed(), state
    home = tmp_path_factory.mktemp("console-home")
    report = home / "reports" / "run-1"
    report.mkdir(parents=True)
    (report / "report.html").write_text("<html><body><h1>backtest report run-1</h1></body></html>")
    secrets_env = {"ALPHALOOM_LLM_API_KEY": LLM_KEY, "ALPHALOOM_HOME": str(home),
                   "ALPHALOOM_ALERT_WEBHOOK_URL": f"http://127.0.0.1:9/{WEBHOOK_TOKEN}"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in secrets_env}
    os.environ.update(secrets_env)
    get_settings.cache_clear()
    settings = get_settings()
    with engine.begin() as conn:
        set_password(conn, USER, PASSWORD)
        order = conn.execute(
            text("select client_order_id, decision_id from audit.orders where account = :a order by created_at limit 1"),
            {"a": settings.account},
        ).first()  # fmt: skip
        actions = conn.execute(text("select action, count(*) from audit.decisions group by 1")).all()
        holding = conn.execute(
            text("select count(*) from audit.positions where account = :a and quantity <> 0"), {"a": settings.account}
        ).scalar_one()
    assert order is not None, f"the demo run must trade for these tests to mean anything; decisions: {actions}"
    assert holding > 0, "the demo run must end holding positions for the pages to show them"
    try:
        yield Demo(data, settings, order.decision_id, order.client_order_id)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def _client(engine: Engine, demo: Demo, host: str = "127.0.0.1", prefect_api: str | None = None) -> TestClient:
    actions = ConsoleActions(engine, on_kill_switch_engaged=cancel_open_orders_hook, prefect_api_url=prefect_api)
    return TestClient(create_app(ConsoleConfig(engine, demo.settings, actions, host=host)), follow_redirects=False)


def _login(client: TestClient, username: str = USER, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    return client.post("/login", data={"csrf": token, "username": username, "password": password, "next": "/"})


def _csrf(client: TestClient) -> str:
    return client.get("/actions").text.split('name="csrf" value="')[1].split('"')[0]


def _pages(demo: Demo) -> list[str]:
    return ["/", "/?range=day", "/?range=week", "/decisions", "/decisions?symbol=BTC/USDT&action=buy",
            f"/decisions/{demo.decision_id}", f"/orders/{demo.order_id}", "/risk", "/runs", "/actions",
            "/reports/run-1/report.html"]  # fmt: skip


def test_every_page_answers_on_loopback_and_no_page_shows_a_secret(engine, demo) -> None:
    client = _client(engine, demo)
    with engine.connect() as conn:
        stored_hash = conn.execute(
            text("select password_hash from audit.console_users where username = :u"), {"u": USER}
        ).scalar_one()
    assert _login(client).status_code == 303
    for path in [*_pages(demo), "/login", "/static/console.css", "/static/console.js"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        for secret in (LLM_KEY, WEBHOOK_TOKEN, PASSWORD, stored_hash, stored_hash.split("$")[-1]):
            assert secret not in response.text, (path, "secret rendered")
    now = client.get("/").text
    assert "BTC/USDT" in now and 'class="position"' in now and "kill switch" in now
    # each held market's class as the risk rules group it (configured for these file sources), never a guess
    risk = client.get("/risk").text
    with engine.connect() as conn:
        held = conn.execute(text("select symbol from audit.positions where account = :a and quantity <> 0"),
                            {"a": demo.settings.account}).scalars().all()  # fmt: skip
    for symbol in held:
        assert f"<td>{symbol}</td><td>{demo.settings.asset_classes[symbol]}</td>" in risk, symbol
    decisions = client.get("/decisions").text
    assert decisions.count('class="decision"') >= len(demo.data.symbols)
    explain = client.get(f"/decisions/{demo.decision_id}").text
    assert 'id="opinions"' in explain and 'id="risk-checks"' in explain and demo.order_id in explain
    assert client.get("/decisions/no-such-decision").status_code == 404
    reflected = client.get("/decisions/<script>alert(1)</script>")
    assert reflected.status_code == 404 and "<script>" not in reflected.text
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]
    assert client.get("/reports/run-1/../../secret.key").status_code == 404
    assert client.get("/reports/..%2F..%2Fsecret.key/x.html").status_code == 404


def test_off_loopback_every_page_needs_a_login(engine, demo) -> None:
    client = _client(engine, demo, host="0.0.0.0")
    for path in _pages(demo):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
        assert "BTC/USDT" not in response.text
    assert client.get("/", headers={"X-Console-Live": "1"}).status_code == 401
    assert _login(client, password="wrong password").headers["location"].startswith("/login?error=1")
    assert client.get("/").status_code == 303
    assert _login(client).status_code == 303
    for path in _pages(demo):
        assert client.get(path).status_code == 200, path


def test_the_session_cookie_is_httponly_and_samesite_and_a_failed_login_is_recorded(engine, demo) -> None:
    client = _client(engine, demo)
    failed = _login(client, password="not the password")
    assert COOKIE not in failed.cookies
    response = _login(client)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    with engine.connect() as conn:
        outcomes = conn.execute(
            text("select outcome from audit.console_actions where action = 'login' and username = :u order by id"),
            {"u": USER},
        ).scalars().all()  # fmt: skip
    assert outcomes[-2:] == ["refused", "ok"]


def test_actions_need_a_login_even_on_loopback(engine, demo) -> None:
    client = _client(engine, demo)
    before = _switch(engine)
    for path, data in (("/actions/kill-switch", {"state": "on", "reason": "x", "confirm": "yes"}),
                       ("/actions/arm", {"account": demo.settings.account, "state": "on", "confirm": "yes"}),
                       ("/actions/decide", {})):  # fmt: skip
        assert client.post(path, data=data).status_code == 401, path
    assert _switch(engine) == before
    assert "Log in to act" in client.get("/actions").text


def test_a_state_change_without_the_csrf_token_is_rejected_and_changes_nothing(engine, demo) -> None:
    client = _client(engine, demo)
    _login(client)
    before = _switch(engine)
    for token in (None, "forged-token"):
        data = {"state": "on", "reason": "csrf test", "confirm": "yes"} | ({"csrf": token} if token else {})
        assert client.post("/actions/kill-switch", data=data).status_code == 403
        assert client.post("/actions/arm", data={**data, "account": demo.settings.account}).status_code == 403
        assert client.post("/actions/decide", data=data).status_code == 403
        assert client.post("/logout", data=data).status_code == 403
    assert _switch(engine) == before
    fresh = _client(engine, demo)
    assert fresh.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 403


def _switch(engine: Engine) -> tuple[int, bool]:
    with engine.connect() as conn:
        count = conn.execute(text("select count(*) from audit.kill_switch")).scalar_one()
        return count, kill_switch_state(conn).engaged


def test_the_kill_switch_from_the_console_is_recorded_with_who_and_why(engine, demo) -> None:
    client = _client(engine, demo)
    _login(client)
    token = _csrf(client)
    unconfirmed = client.post("/actions/kill-switch", data={"csrf": token, "state": "on", "reason": "r"},
                              headers={"X-Console-Live": "1"})  # fmt: skip
    assert unconfirmed.status_code == 409 and not _switch(engine)[1]
    try:
        done = client.post("/actions/kill-switch", headers={"X-Console-Live": "1"},
                           data={"csrf": token, "state": "on", "reason": "venue outage", "confirm": "yes"})  # fmt: skip
        assert done.status_code == 200 and done.json()["message"].startswith("kill switch ON")
        with engine.connect() as conn:
            state = kill_switch_state(conn)
            action = conn.execute(
                text("select username, action, reason, outcome, client from audit.console_actions "
                     "where action like 'kill_switch%' order by id desc limit 1")
            ).one()  # fmt: skip
            cancel_run = conn.execute(
                text("select count(*) from audit.runs where flow = 'kill_switch_cancel' and parameters->>'source' = "
                     "'console'")
            ).scalar_one()  # fmt: skip
        assert (state.engaged, state.reason, state.changed_by) == (True, "venue outage", f"console:{USER}")
        assert tuple(action) == (USER, "kill_switch_on", "venue outage", "ok", "testclient")
        assert cancel_run == 1, "turning the switch on cancels open orders through execution, recorded as a run"
        assert 'data-engaged="true"' in client.get("/").text
        off = client.post("/actions/kill-switch",
                          data={"csrf": token, "state": "off", "reason": "resolved", "confirm": "yes"})  # fmt: skip
        assert off.status_code == 303 and not _switch(engine)[1]
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")


def test_arm_and_disarm_are_recorded(engine, demo) -> None:
    client = _client(engine, demo)
    _login(client)
    token = _csrf(client)
    account = demo.settings.account
    for state, armed in (("on", True), ("off", False)):
        response = client.post("/actions/arm", headers={"X-Console-Live": "1"},
                               data={"csrf": token, "account": account, "state": state, "reason": "t", "confirm": "yes"})  # fmt: skip
        assert response.status_code == 200
        with engine.connect() as conn:
            assert (
                conn.execute(text("select live_enabled from audit.accounts where id = :a"), {"a": account}).scalar()
                is armed
            )
    unknown = client.post("/actions/arm", headers={"X-Console-Live": "1"},
                          data={"csrf": token, "account": "nosuch", "state": "on", "confirm": "yes"})  # fmt: skip
    assert unknown.status_code == 409 and "does not exist" in unknown.json()["message"]
    with engine.connect() as conn:
        rows = conn.execute(
            text("select action, target, outcome from audit.console_actions where action in ('arm', 'disarm') "
                 "order by id desc limit 3")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("arm", "nosuch", "refused"), ("disarm", account, "ok"), ("arm", account, "ok")]


def test_trigger_a_decision_run_through_its_deployment_or_say_there_is_no_server(engine, demo) -> None:
    client = _client(engine, demo)
    _login(client)
    refused = client.post("/actions/decide", data={"csrf": _csrf(client), "reason": "x"},
                          headers={"X-Console-Live": "1"})  # fmt: skip
    assert refused.status_code == 409 and "no Prefect server" in refused.json()["message"]
    assert "cannot be triggered from here" in client.get("/actions").text

    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()  # the session's temporary Prefect API
    flow_id = httpx.post(f"{api}/flows/", json={"name": "decide"}).json()["id"]
    deployment = httpx.post(f"{api}/deployments/", json={"name": "decide", "flow_id": flow_id}).json()["id"]
    client = _client(engine, demo, prefect_api=api)
    _login(client)
    done = client.post("/actions/decide", data={"csrf": _csrf(client), "reason": "manual check"},
                       headers={"X-Console-Live": "1"})  # fmt: skip
    assert done.status_code == 200, done.text
    runs = httpx.post(f"{api}/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment]}}}).json()
    assert len(runs) == 1 and "console" in runs[0]["tags"]
    with engine.connect() as conn:
        row = conn.execute(
            text("select username, outcome, details->>'flow_run_id' from audit.console_actions "
                 "where action = 'trigger_decide' order by id desc limit 1")
        ).one()  # fmt: skip
    assert tuple(row) == (USER, "ok", runs[0]["id"])


def test_set_password_stores_a_scrypt_hash_and_refuses_a_short_password(engine, demo) -> None:
    runner = CliRunner()
    short = runner.invoke(cli_app, ["console", "set-password", "--user", "bob", "--password", "short"])
    assert short.exit_code == 2 and "at least 8 characters" in short.output and "Traceback" not in short.output
    ok = runner.invoke(cli_app, ["console", "set-password", "--user", "bob", "--password", "long enough pw"])
    assert ok.exit_code == 0, ok.output
    with engine.connect() as conn:
        stored = conn.execute(text("select password_hash from audit.console_users where username = 'bob'")).scalar()
    assert stored.startswith("scrypt$") and "long enough pw" not in stored


def test_serve_runs_the_console_beside_the_prefect_server(engine, demo) -> None:
    from alphaloom.cli.console import start_beside

    settings = demo.settings.model_copy(update={"ops.console_port": free_port()})
    server, url = start_beside(settings, "http://127.0.0.1:9/api")
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for readiness, bounded
    try:
        assert url == f"http://127.0.0.1:{settings.ops.console_port}/"
        assert httpx.get(url, timeout=10).status_code == 200
        client = httpx.Client(base_url=url, timeout=10)
        token = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"csrf": token, "username": USER, "password": PASSWORD, "next": "/"})
        actions = client.get("/actions").text
        assert "Creates a flow run of the <code>decide</code> deployment" in actions  # the Prefect API is known
        assert 'href="http://127.0.0.1:9/runs/flow-run/' in client.get("/runs").text  # runs link into its UI
    finally:
        server.should_exit = True


# --- a real browser --------------------------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture()
def served(engine, demo) -> Iterator[str]:
    import uvicorn

    actions = ConsoleActions(engine, on_kill_switch_engaged=cancel_open_orders_hook)
    app = create_app(ConsoleConfig(engine, demo.settings, actions, host="127.0.0.1", poll_seconds=1.0))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for readiness, bounded
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="Debian's chromium and chromium-driver are not installed (make test installs them with "
                    "apt-get; it could not here)")  # fmt: skip
def test_a_browser_logs_in_reads_the_pages_and_turns_the_kill_switch_on_live(engine, demo, served, tmp_path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(f"{served}/login?next=/")
        driver.find_element(By.ID, "username").send_keys(USER)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.position"))
        positions = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.position")]
        assert positions and any(s in " ".join(positions) for s in demo.data.symbols)
        assert driver.find_element(By.ID, "kill-switch-state").get_attribute("data-engaged") == "false"
        driver.save_screenshot(str(shots / "now.png"))

        driver.get(f"{served}/decisions")
        latest = driver.find_elements(By.CSS_SELECTOR, "#latest-decisions tr.decision")
        assert len(latest) == len(demo.data.symbols)
        driver.save_screenshot(str(shots / "decisions.png"))
        latest[0].find_element(By.CSS_SELECTOR, "a.explain").click()
        wait.until(lambda d: d.find_elements(By.ID, "opinions"))
        assert driver.find_elements(By.CSS_SELECTOR, "#opinions tr")[1:], "the explain page lists the opinions"
        assert driver.find_element(By.ID, "risk-checks")
        driver.save_screenshot(str(shots / "explain.png"))

        for name in ("risk", "runs"):
            driver.get(f"{served}/{name}")
            driver.save_screenshot(str(shots / f"{name}.png"))

        driver.get(f"{served}/actions")
        driver.execute_script("window.__notReloaded = true;")
        Select(driver.find_element(By.ID, "kill-switch-target")).select_by_value("on")
        driver.find_element(By.ID, "kill-switch-reason").send_keys("browser test")
        driver.find_element(By.ID, "kill-switch-confirm").click()
        driver.find_element(By.ID, "kill-switch-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "kill-switch-state").get_attribute("data-engaged") == "true")
        assert driver.execute_script("return window.__notReloaded === true;"), "the page must not have reloaded"
        assert "kill switch ON" in driver.find_element(By.ID, "action-message").text
        driver.save_screenshot(str(shots / "actions.png"))

        # The Now page follows a change made elsewhere (here: the CLI's path) without a reload.
        driver.get(f"{served}/")
        driver.execute_script("window.__notReloaded = true;")
        with engine.begin() as conn:
            set_kill_switch(conn, True, "second reason", "cli:test")
        wait.until(lambda d: "second reason" in d.find_element(By.ID, "now-summary").text)
        assert driver.execute_script("return window.__notReloaded === true;")
        driver.save_screenshot(str(shots / "now_kill_switch_on.png"))
    finally:
        driver.quit()
    print(f"screenshots: {shots}")
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        ["now.png", "decisions.png", "explain.png", "risk.png", "runs.png", "actions.png", "now_kill_switch_on.png"]
    )

    try:
        with engine.connect() as conn:
            before = conn.execute(text("select count(*) from audit.orders")).scalar_one()
        # the steps after the fixture's run (never decided before) close its positions, so they would trade
        state = decide_flow(symbols=list(demo.data.symbols), as_of=demo.data.end, steps=STEPS, return_state=True)
        assert state.is_completed()
        with engine.connect() as conn:
            after = conn.execute(text("select count(*) from audit.orders")).scalar_one()
            blocked = conn.execute(
                text("select count(*) from audit.risk_checks where run_id = :r and check_name like 'kill_switch%' "
                     "and not approved"),
                {"r": str(state.state_details.flow_run_id)},
            ).scalar_one()  # fmt: skip
        assert blocked > 0, "the run wanted to trade, so the switch was what stopped it"
        assert after == before
    finally:
        with engine.begin() as conn:
            set_kill_switch(conn, False, "test done", "pytest")


def test_the_risk_page_groups_exposure_by_the_markets_class_as_the_risk_rules_do(engine: Engine) -> None:
    """BTC/USD on a crypto venue (its metadata in raw.markets) is crypto though its quote is a fiat code; TSLA/USDT
    configured as an equity is an equity though its quote is a stablecoin: the classes the class-exposure rule uses."""
    from decimal import Decimal

    from alphaloom.console.queries import NowView, risk_view
    from alphaloom.markets import MarketSpec, store_specs
    from alphaloom.ops.kill_switch import KillSwitchState
    from alphaloom.reporting.account_summary import AccountSummary, PositionSummary

    d, venue, account = Decimal, "consolevenue", "console-classes"
    with engine.begin() as conn:
        store_specs(conn, venue, [MarketSpec("BTC/USD", "crypto", d("1E-8"), source="venue")])
    settings = get_settings().model_copy(
        update={"exchange": venue, "account": account, "asset_classes": {"TSLA/USDT": "equity"}}
    )
    positions = [PositionSummary("BTC/USD", d(1), d(60000), d(60000), d(60000), d(0), d(0)),
                 PositionSummary("TSLA/USDT", d(10), d(200), d(200), d(2000), d(0), d(0))]  # fmt: skip
    view = AccountSummary(account, "USD", d(100000), d(38000), d(0), 0, 0, positions)
    now = NowView(account, view, None, [], KillSwitchState(False, "", ""), None, None, None, [], [], [], {})
    with engine.connect() as conn:
        risk = risk_view(conn, settings, now)
    assert {e["symbol"]: e["class"] for e in risk.exposures} == {"BTC/USD": "crypto", "TSLA/USDT": "equity"}
