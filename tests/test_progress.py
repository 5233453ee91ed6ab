"""The progress bar shows steps on stderr when asked (a terminal), and nothing at all otherwise."""

from __future__ import annotations

from alphaloom.progress import progress


def test_no_progress_output_when_not_a_terminal(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ALPHALOOM_PROGRESS", "auto")  # pytest's stderr is not a terminal
    with progress(3, "backtest x") as advance:
        for _ in range(3):
            advance(1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_bar_with_steps_done_when_forced(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ALPHALOOM_PROGRESS", "always")
    with progress(4, "backtest y") as advance:
        with progress(2, "inner") as inner:
            inner(2)
        for _ in range(4):
            advance()
    err = capsys.readouterr().err
    assert "backtest y" in err and "4/4" in err
