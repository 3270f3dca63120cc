"""The training precision follows the hardware when unset: bf16-mixed where bf16 is native, else fp32."""

from __future__ import annotations

import pytest
import yaml
from conftest import tiny_config
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core import cli
from tangrnn_core.precision import choose_precision, training_device


@pytest.mark.parametrize(
    ("device", "units", "expected"),
    [("cpu", True, "bf16-mixed"), ("cpu", False, "32-true"), ("cuda", True, "bf16-mixed"), ("cuda", False, "32-true")],
)
def test_the_choice_follows_the_bf16_units(device, units, expected):
    precision, why = choose_precision(device, units)
    assert precision == expected and why


def test_other_devices_keep_lightnings_default():
    assert choose_precision("mps", True) is None
    assert training_device("mps") is None and training_device("cpu") == "cpu"


@pytest.mark.parametrize(
    ("units", "expected", "why"), [(True, "bf16-mixed", "has bf16 units"), (False, "32-true", "has no bf16 units")]
)
def test_fit_without_a_precision_takes_the_hardware_choice_and_says_why(
    tmp_path, small_corpus, monkeypatch, capsys, units, expected, why
):
    monkeypatch.setattr("tangrnn_core.decoding.quantize.has_bf16_units", lambda device: units)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    # An earlier in-process run under a patched cluster environment leaves Lightning's rank behind.
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2, precision=None)
    cli.main(["fit", "--config", str(config)])
    err = capsys.readouterr().err
    assert f"tangrnn: precision {expected}: this CPU {why}" in err and "set trainer.precision to choose" in err
    (saved,) = (tmp_path / "runs").glob("**/config.yaml")
    assert yaml.safe_load(saved.read_text(encoding="utf-8"))["trainer"]["precision"] == expected


def test_a_precision_that_is_set_always_wins(tmp_path, small_corpus, monkeypatch, capsys):
    monkeypatch.setattr("tangrnn_core.decoding.quantize.has_bf16_units", lambda device: True)
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)  # 32-true
    cli.main(["fit", "--config", str(config)])
    assert "tangrnn: precision" not in capsys.readouterr().err
    (saved,) = (tmp_path / "runs").glob("**/config.yaml")
    assert yaml.safe_load(saved.read_text(encoding="utf-8"))["trainer"]["precision"] == "32-true"
