"""Shell completion through Typer: each shell's script, and the completions it asks the program for."""

from __future__ import annotations

import pytest

from degradation.cli import main

ENV = "_DEGRADATION_COMPLETE"  # the variable Typer/click read for the program name `degradation`


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_completion_script_that_calls_back_the_program(monkeypatch, capsys, shell: str) -> None:
    monkeypatch.setenv(ENV, f"source_{shell}")
    assert main([]) == 0
    script = capsys.readouterr().out
    assert f"{ENV}=complete_{shell}" in script and "degradation" in script


def completions(monkeypatch, capsys, shell: str, words: str) -> str:
    monkeypatch.setenv(ENV, f"complete_{shell}")
    if shell == "bash":
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
    else:
        monkeypatch.setenv("_TYPER_COMPLETE_ARGS", words)
        monkeypatch.setenv("_TYPER_COMPLETE_FISH_ACTION", "get-args")
    assert main([]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_options_and_sub_commands_complete(monkeypatch, capsys, shell: str) -> None:
    assert "sweep" in completions(monkeypatch, capsys, shell, "degradation sw")
    assert "--depths" in completions(monkeypatch, capsys, shell, "degradation sweep --dep")
    assert "check" in completions(monkeypatch, capsys, shell, "degradation data ch")


def test_the_help_offers_the_install_and_show_completion_options(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--install-completion" in out and "--show-completion" in out
