"""`tangrnn generate` without Lightning: which command lines take the quick path, and that they print exactly
what the LightningCLI verb prints (the same poems, the same error lines)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_batch

from tangrnn_core.generate_command import decodes_without_lightning


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--form", "五绝"],
        ["--form=七律", "--tones", "strict", "--rhyme", "auto", "--seed", "3"],
        ["--acrostic", "春江花月", "--chars", "5", "--temperature", "0.7", "--top_p", "0.9"],
        ["--ckpt_path", "model.ckpt", "--output", "json", "--quantize", "none", "--num_poems", "2"],
        ["--temperature", "-1"],  # a negative number is a value: the request's check refuses it in its one line
    ],
)
def test_request_flags_and_a_checkpoint_file_need_no_lightning(args):
    assert decodes_without_lightning(args)


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "configs/lstm.yaml"],
        ["-c", "configs/lstm.yaml"],
        ["--trainer.accelerator", "cpu"],
        ["--model.architecture", "gru"],
        ["--seed_everything", "1"],
        ["--print_config"],
        ["--help"],
        ["-h"],
        ["--ckpt_path", "last"],
        ["--ckpt_path", "best"],
        ["--form", "五绝", "--no_such_flag", "1"],
        ["--temperature", "warm"],  # unparsable: LightningCLI words the error as for every verb
        ["--output", "yaml"],
        ["stray"],
    ],
)
def test_everything_else_goes_to_lightning_cli(args):
    assert not decodes_without_lightning(args)


#: Command lines compared both ways; `--trainer.accelerator cpu` sends the same request through LightningCLI.
CASES = {
    "free": ["--seed", "5", "--num_poems", "3"],
    "form json": ["--form", "五绝", "--seed", "7", "--num_poems", "4", "--output", "json"],
    "first line beams": ["--first_line", "白日依山尽", "--form", "五绝", "--num_beams", "2", "--seed", "1"],
    "greedy fp32": ["--form", "七绝", "--temperature", "0", "--num_poems", "1", "--quantize", "none"],
    "avoid top_p": ["--form", "五绝", "--avoid", "山水", "--top_p", "0.9", "--seed", "2", "--num_poems", "2"],
    "bad temperature": ["--form", "五绝", "--temperature", "-1"],
    "impossible": ["--form", "五绝", "--acrostic", "春夏秋冬山"],
}


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory, small_corpus):
    from conftest import untrained_checkpoint

    from tangrnn_core.data.datamodule import PoetryDataModule

    tmp = tmp_path_factory.mktemp("generate-command")
    data = PoetryDataModule(corpus=str(small_corpus), batch_size=8, val_fraction=0.1, test_fraction=0.1)
    path = untrained_checkpoint(tmp / "model.ckpt", data, "lstm", {"embedding_size": 16, "hidden_size": 24}, seed=3)
    cases = {}
    for name, args in CASES.items():
        cases[f"{name} quick"] = {"argv": ["generate", "--ckpt_path", path, *args]}
        cases[f"{name} lightning"] = {"argv": ["generate", "--ckpt_path", path, *args, "--trainer.accelerator", "cpu"]}
    cases["missing quick"] = {"argv": ["generate", "--ckpt_path", str(tmp / "nothing.ckpt")]}
    cases["missing lightning"] = {
        "argv": ["generate", "--ckpt_path", str(tmp / "nothing.ckpt"), "--trainer.devices", "1"]
    }
    return run_batch(cases, tmp)


@pytest.mark.parametrize("name", [*CASES, "missing"])
def test_the_quick_path_prints_what_lightning_cli_prints(both_ways, name):
    quick, lightning = both_ways[f"{name} quick"], both_ways[f"{name} lightning"]
    assert (quick.returncode, quick.stdout, quick.stderr) == (lightning.returncode, lightning.stdout, lightning.stderr)
    if name in ("bad temperature", "impossible", "missing"):
        assert quick.returncode == 2 and quick.stderr.startswith("tangrnn: error: ") and quick.stderr.count("\n") == 1
    else:
        assert quick.returncode == 0 and quick.stdout.strip()


def test_a_poem_from_the_bundled_model_imports_no_lightning():
    script = (
        "import sys\n"
        "from tangrnn_core.cli import main\n"
        "main(['generate', '--form', '五绝', '--num_poems', '1', '--seed', '1'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'torchmetrics'))\n"
        "print('LOADED', loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *poem, loaded = result.stdout.strip().splitlines()
    assert len(poem) == 4 and all(len(line) == 6 for line in poem)
    assert loaded == "LOADED []"


def test_the_command_ends_at_once_with_everything_it_printed_flushed(tmp_path):
    # `tangrnn generate` ends with os._exit after flushing (tangrnn_core.cli._exit_now): redirected to a file,
    # every record must still be there, whole.
    out = tmp_path / "poems.jsonl"
    command = f"{sys.executable} -m tangrnn_core generate --form 七绝 --num_poems 3 --seed 2 --output json > {out}"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3 and all(record["form"] == "七绝" for record in records)
