"""The progress bar shows steps on stderr when asked (a terminal), and nothing at all otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alphaloom.progress import progress
from alphaloom.settings import get_settings


@pytest.fixture()
def choose(monkeypatch) -> Iterator:  # type: ignore[type-arg]
    def choose(value: str) -> None:
        monkeypatch.setenv("ALPHALOOM_PROGRESS", value)
        get_settings.cache_clear()

    yield choose
    get_settings.cache_clear()


def test_no_progress_output_when_not_a_terminal(choose, capsys) -> None:
    choose("auto")  # pytest's stderr is not a terminal
    with progress(3, "backtest x") as advance:
        for _ in range(3):
            advance(1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("value", ["always", "ALWAYS", "1", "true"])
def test_a_bar_with_steps_done_when_forced(choose, capsys, value) -> None:
    choose(value)
    with progress(4, "backtest y") as advance:
        with progress(2, "inner") as inner:
            inner(2)
        for _ in range(4):
            advance()
    err = capsys.readouterr().err
    assert "backtest y" in err and "4/4" in err


def test_never_shows_no_bar(choose, capsys) -> None:
    choose("0")
    with progress(2, "backtest z") as advance:
        advance(2)
    assert capsys.readouterr().err == ""
    assert get_settings().ops.progress == "never"


def test_a_bad_choice_names_the_variable(choose) -> None:
    from alphaloom.settings import settings_problem

    choose("sometimes")
    problem = settings_problem()
    assert problem is not None and "ALPHALOOM_PROGRESS" in problem
