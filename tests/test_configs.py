"""Every shipped config parses with the real command-line parser, and names options its architecture has.

The configs are parsed in-process by ``run_lightning_cli([... "--print_config"])``: jsonargparse checks every
key and type (trainer, model, data, optimiser and scheduler class paths) and exits before any class is built,
so the full corpus is never loaded. ``model.architecture_options`` is a free dict to the parser, so each one is
also given to the architecture it names through ``build_architecture``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.forms import Form
from tangrnn_core.errors import ConfigError
from tangrnn_core.lightning_cli import run_lightning_cli
from tangrnn_core.network import build_architecture

REPO = Path(__file__).resolve().parents[1]
# Model configs stand alone; the cluster configs are overlays given after one (`--config A --config B`).
CONFIGS = sorted(REPO.glob("configs/*.yaml"))
OVERLAYS = sorted(REPO.glob("configs/cluster/*.yaml"))
# ids 0-4 are the special tokens; the two line-end marks come right after them
TOKENS = TokenSpec(vocab_size=40, line_end_ids=(5, 6))


def print_config(args: list[str], capsys) -> tuple[int | str | None, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_lightning_cli(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_there_are_configs():
    assert {path.name for path in CONFIGS} >= {"rnn.yaml", "lstm.yaml", "gru.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_parses_with_the_cli(path, capsys):
    code, out, err = print_config(["fit", "--config", str(path), "--print_config"], capsys)
    assert code in (0, None), err
    printed = yaml.safe_load(out)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    # what the parser understood is what the file says
    assert printed["model"]["architecture"] == written["model"]["architecture"]
    assert printed["model"]["architecture_options"] == written["model"]["architecture_options"]
    for key, value in written.get("trainer", {}).items():
        assert printed["trainer"][key] == value, key
    for key, value in written.get("data", {}).items():
        assert printed["data"][key] == value, key
    assert printed["trainer"]["use_distributed_sampler"] is False


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_architecture_options_build(path):
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    model = written["model"]
    net = build_architecture(model["architecture"], model.get("architecture_options"), TOKENS)
    inputs = torch.tensor([[TOKENS.bos_id, 7, 9, 5, 8]])
    batch = Batch(inputs, inputs, torch.tensor([5]), torch.tensor([[10, 11]]), torch.tensor([2]))
    assert net.eval()(batch).shape == (1, 5, TOKENS.vocab_size)
    for name in written.get("data", {}).get("forms") or ():
        Form.parse(name)


def test_a_misspelt_key_fails_to_parse(tmp_path, capsys):
    # Shows that the parse above really checks the file.
    bad = yaml.safe_load(CONFIGS[0].read_text(encoding="utf-8"))
    bad["trainer"]["max_stepz"] = bad["trainer"].pop("max_steps")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    # The CLI reports a parse error either by exiting non-zero (jsonargparse's default) or, when it is set up
    # to print one line instead, by raising a ConfigError.
    capsys.readouterr()
    with pytest.raises((SystemExit, ConfigError)) as info:
        run_lightning_cli(["fit", "--config", str(path), "--print_config"])
    if isinstance(info.value, SystemExit):
        assert info.value.code not in (0, None)
        message = capsys.readouterr().err
    else:
        message = str(info.value)
    assert "max_stepz" in message


def test_a_misspelt_architecture_option_fails_to_build():
    written = yaml.safe_load(CONFIGS[0].read_text(encoding="utf-8"))
    options = dict(written["model"]["architecture_options"])
    options["hiden_size"] = options.pop("hidden_size")
    with pytest.raises(ConfigError, match="hiden_size"):
        build_architecture(written["model"]["architecture"], options, TOKENS)


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_cluster_overlays_parse_after_a_model_config(path, capsys):
    base = REPO / "configs" / "lstm.yaml"
    code, out, err = print_config(["fit", "--config", str(base), "--config", str(path), "--print_config"], capsys)
    assert code in (0, None), err
    printed = yaml.safe_load(out)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section in ("trainer", "data"):
        for key, value in written.get(section, {}).items():
            assert printed[section][key] == value, key
    assert printed["model"]["architecture"] == "lstm"
