"""The `tangrnn` command end to end: training, evaluation, resuming, plugins, and one-line user errors.

Starting `tangrnn` costs several seconds (importing Lightning), so the checks share processes:
``trained_run`` trains once (a real `tangrnn fit` process) and ``batch`` runs every other case of this file
through ``tangrnn_core.cli.main`` in a single Python process (see ``RUNNER``), each case with its own
captured stdout/stderr (at the file-descriptor level, so Lightning's log lines are captured too), exit
status and environment. Resuming, the `--help` of the top command and one parse error run as real processes.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, make_distribution, run_batch, run_tangrnn, tiny_config

from tangrnn_core.data.forms import Form, classify

BROKEN_MODULE = 'raise ImportError("fake_broken needs libfoo, which is not installed")\n'
GOOD_MODULE = '''
from tangrnn_recurrent import GRU

class Tiny(GRU):
    """A GRU under another name."""
'''
CJK = re.compile(r"[\u4e00-\u9fff]")


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


# -- training once -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("trained")
    config = tiny_config(tmp, small_corpus)
    result = run_tangrnn("fit", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    last = sorted((tmp / "runs").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert len(last) == 1, list((tmp / "runs").rglob("*"))
    return {"tmp": tmp, "config": config, "result": result, "run_dir": last[0].parents[1], "last": last[0]}


def test_fit_trains_prints_poems_and_writes_checkpoint_config_and_events(trained_run):
    result, run_dir = trained_run["result"], trained_run["run_dir"]
    assert "Poems after 3 steps:" in result.stdout and "Poems after 6 steps:" in result.stdout, result.stdout
    poem_lines = [line for line in result.stdout.splitlines() if line.startswith("  ") and CJK.search(line)]
    assert len(poem_lines) >= 8  # PoemSamples writes 4 poems at each of the two validations
    assert checkpoint_step(trained_run["last"]) == 6
    saved = (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert "max_steps: 6" in saved and "architecture: lstm" in saved
    assert list(run_dir.glob("events.out.tfevents.*")), list(run_dir.iterdir())
    assert "Traceback" not in result.stderr


def test_fit_resumes_from_a_checkpoint(trained_run, tmp_path):
    last = trained_run["last"]
    before = last.read_bytes()
    result = run_tangrnn(
        "fit",
        "--config",
        str(trained_run["config"]),
        "--trainer.max_steps",
        "9",
        "--trainer.default_root_dir",
        str(tmp_path / "resumed"),
        "--ckpt_path",
        str(last),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # It continued from step 6: the only validation it ran was at step 9.
    assert "Poems after 9 steps:" in result.stdout and "Poems after 3 steps:" not in result.stdout, result.stdout
    resumed = list((tmp_path / "resumed").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert len(resumed) == 1
    assert checkpoint_step(resumed[0]) == 9
    assert last.read_bytes() == before


# -- everything else, in one process -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(trained_run, small_corpus, tmp_path_factory):
    """Every remaining case, run in one process; returns (name -> result, files that must stay unchanged)."""
    tmp = tmp_path_factory.mktemp("batch")
    config = tiny_config(tmp, small_corpus)
    ckpt, config_base = str(trained_run["last"]), json.loads(config.read_text(encoding="utf-8"))
    runs = str(trained_run["tmp"] / "runs")

    def config_file(name: str, text: str) -> str:
        (tmp / name).write_text(text, encoding="utf-8")
        return str(tmp / name)

    invalid_yaml = config_file("invalid.yaml", "model:\n  architecture: [lstm\n  - : :\n")
    unknown_key = config_file("unknown_key.yaml", json.dumps({**config_base, "modle": {"architecture": "gru"}}))
    unknown_trainer = config_file(
        "unknown_trainer.yaml", json.dumps({**config_base, "trainer": {**config_base["trainer"], "max_stepz": 3}})
    )
    bad_option = config_file(
        "bad_option.yaml",
        json.dumps({**config_base, "model": {"architecture": "lstm", "architecture_options": {"hiden_size": 8}}}),
    )
    random_xz = tmp / "random.jsonl.xz"
    random_xz.write_bytes(random.Random(0).randbytes(4096))
    broken_jsonl = tmp / "broken.jsonl"
    first_lines = small_corpus.read_text(encoding="utf-8").splitlines()[:20]
    broken_jsonl.write_text("\n".join(first_lines[:10] + ['{"id": "x", "title": '] + first_lines[10:]) + "\n")
    english = tmp / "english.txt"
    english.write_text(
        "The quick brown fox jumps over the lazy dog, again and again and again.\n"
        "All work and no play makes Jack a dull boy, or so the saying goes today.\n" * 100,
        encoding="utf-8",
    )
    empty = tmp / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    other_model = tmp / "other_model.ckpt"
    torch.save(
        {
            "state_dict": {"layer.weight": torch.zeros(2, 2)},
            "pytorch-lightning_version": "2.6.6",
            "hyper_parameters": {"hidden_dim": 64},
        },
        other_model,
    )
    foreign_ckpt = tmp / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign_ckpt)
    truncated_ckpt = tmp / "truncated.ckpt"
    real = trained_run["last"].read_bytes()
    truncated_ckpt.write_bytes(real[: len(real) // 2])
    garbage_ckpt = tmp / "garbage.ckpt"
    garbage_ckpt.write_bytes(b"\x00" + random.Random(1).randbytes(4096))
    pickled_ckpt = tmp / "pickled.ckpt"
    torch.save({"state_dict": {}, "callbacks": {subprocess.CompletedProcess: 1}}, pickled_ckpt)

    site, other_site = tmp / "site", tmp / "other_site"
    make_distribution(site, "fake-broken", {"broken": "fake_broken:Net"}, {"fake_broken": BROKEN_MODULE})
    make_distribution(site, "fake-good", {"tiny": "fake_good:Tiny"}, {"fake_good": GOOD_MODULE})
    make_distribution(site / "one", "fake-one", {"twin": "fake_one:Tiny"}, {"fake_one": GOOD_MODULE})
    make_distribution(other_site, "fake-two", {"twin": "fake_two:Tiny"}, {"fake_two": GOOD_MODULE})
    pythonpath = os.pathsep.join(
        [str(site), str(site / "one"), str(other_site), *filter(None, [os.environ.get("PYTHONPATH")])]
    )

    fit = ["fit", "--config", str(config)]
    off = {"TANGRNN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    cases = {
        # working commands
        "validate": {"argv": ["validate", "--config", str(config), "--ckpt_path", ckpt]},
        "test": {"argv": ["test", "--config", str(config), "--ckpt_path", ckpt]},
        "predict": {"argv": ["predict", "--config", str(config), "--ckpt_path", ckpt, "--data.predict_poems", "3"]},
        "predict_greedy": {
            "argv": ["predict", "--config", str(config), "--ckpt_path", ckpt, "--data.predict_poems", "3"]
            + ["--temperature", "0", "--form", "五绝"]
        },
        "validate_last": {
            "argv": ["validate", "--config", str(config), "--ckpt_path", "last", "--trainer.default_root_dir", runs]
        },
        "plugins": {"argv": ["plugins"]},
        "plugins_off": {"argv": ["plugins"], "env": off},
        "options": {"argv": ["plugins", "--options", "gru"]},
        # the flags `plugins --options` lists, used as listed
        "listed_option": {
            "argv": [
                *fit,
                "--model.architecture",
                "gru",
                "--model.architecture_options.hidden_size",
                "8",
                "--trainer.max_steps",
                "1",
                "--trainer.default_root_dir",
                str(tmp / "listed"),
            ]
        },
        "fit_help": {"argv": ["fit", "--help"]},
        "print_config": {"argv": [*fit, "--print_config"]},
        # configuration errors
        "invalid_yaml": {"argv": ["fit", "--config", str(config), "--config", invalid_yaml]},
        "unknown_key": {"argv": ["fit", "--config", unknown_key]},
        "unknown_trainer_key": {"argv": ["fit", "--config", unknown_trainer]},
        "unknown_trainer_flag": {"argv": [*fit, "--trainer.max_stepz", "3"]},
        "wrong_type": {"argv": [*fit, "--data.batch_size", "abc"]},
        "missing_config": {"argv": ["fit", "--config", str(tmp / "nope.yaml")]},
        # plugin errors
        "unknown_architecture": {"argv": [*fit, "--model.architecture", "lstmm"]},
        "unknown_architecture_option": {"argv": ["fit", "--config", bad_option]},
        "wrong_option_type": {"argv": [*fit, "--model.architecture_options", '{"hidden_size": "wide"}']},
        "broken_plugin": {"argv": [*fit, "--model.architecture", "broken"]},
        "twin_plugin": {"argv": [*fit, "--model.architecture", "twin"]},
        "autoload_off": {"argv": [*fit, "--model.architecture", "tiny"], "env": off},
        # corpus errors
        "missing_corpus": {"argv": [*fit, "--data.corpus", "/nope.jsonl"]},
        "random_xz": {"argv": [*fit, "--data.corpus", str(random_xz)]},
        "broken_jsonl": {"argv": [*fit, "--data.corpus", str(broken_jsonl)]},
        "english": {"argv": [*fit, "--data.corpus", str(english)]},
        "empty_corpus": {"argv": [*fit, "--data.corpus", str(empty)]},
        "other_model_ckpt": {"argv": ["generate", "--ckpt_path", str(other_model), "--form", "五绝"]},
        # checkpoint errors
        "foreign_ckpt": {"argv": ["validate", "--config", str(config), "--ckpt_path", str(foreign_ckpt)]},
        "truncated_ckpt": {"argv": ["validate", "--config", str(config), "--ckpt_path", str(truncated_ckpt)]},
        "missing_ckpt": {"argv": ["test", "--config", str(config), "--ckpt_path", str(tmp / "nope.ckpt")]},
        "no_ckpt": {"argv": ["predict", "--config", str(config)]},
        "bundled_predict": {"argv": ["predict", "--data.predict_poems", "2"]},
        "best_ckpt": {"argv": ["validate", "--config", str(config), "--ckpt_path", "best"]},
        "no_last_ckpt": {"argv": ["test", "--config", str(config), "--ckpt_path", "last"]},
        "truncated_resume": {"argv": [*fit, "--ckpt_path", str(truncated_ckpt)]},
        "garbage_ckpt": {"argv": ["predict", "--config", str(config), "--ckpt_path", str(garbage_ckpt)]},
        "pickled_ckpt": {"argv": ["test", "--config", str(config), "--ckpt_path", str(pickled_ckpt)]},
        # options torch or Lightning refuse only once the objects are built
        "negative_lr": {"argv": [*fit, "--model.optimizer.init_args.lr", "-0.1"]},
        "negative_epochs": {"argv": [*fit, "--trainer.max_epochs", "-3"]},
        "ckpt_as_config": {"argv": ["fit", "--config", ckpt]},
        "huge_seed": {"argv": [*fit, "--seed_everything", str(2**64)]},
        "val_interval_over_epoch": {"argv": [*fit, "--trainer.val_check_interval", "100000"]},
        # tracebacks on request
        "debug_flag": {"argv": [*fit, "--data.corpus", "/nope.jsonl", "--debug"]},
        "debug_env": {"argv": [*fit, "--data.corpus", "/nope.jsonl"], "env": {"TANGRNN_DEBUG": "1"}},
    }
    watched = [
        config,
        Path(invalid_yaml),
        Path(unknown_key),
        Path(unknown_trainer),
        Path(bad_option),
        small_corpus,
        random_xz,
        broken_jsonl,
        english,
        empty,
        other_model,
        foreign_ckpt,
        truncated_ckpt,
        garbage_ckpt,
        pickled_ckpt,
        trained_run["last"],
    ]
    before = {path: path.read_bytes() for path in watched}
    results = run_batch(cases, tmp, env={"PYTHONPATH": pythonpath})
    return results, before


def test_validate_and_test_report_perplexity(batch):
    results, _ = batch
    for verb in ("validate", "test"):
        assert results[verb].returncode == 0, results[verb].stdout + results[verb].stderr
    assert re.search(r"val/ppl\s+\d", results["validate"].stdout), results["validate"].stdout
    assert re.search(r"test/ppl\s+\d", results["test"].stdout), results["test"].stdout


def test_ckpt_path_last_is_the_newest_last_checkpoint_of_the_runs(batch, trained_run):
    result = batch[0]["validate_last"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Restoring states from the checkpoint path at {trained_run['last']}" in result.stderr, result.stderr
    assert re.search(r"val/ppl\s+\d", result.stdout)


def test_predict_writes_the_requested_number_of_poems(batch):
    result = batch[0]["predict"]
    assert result.returncode == 0, result.stdout + result.stderr
    poems = [poem for poem in result.stdout.strip().split("\n\n") if CJK.search(poem)]
    assert len(poems) == 3, result.stdout
    for poem in poems:  # one verse per line, as generate prints them (a free poem may stop without a mark)
        assert all(line[-1] in "，。？！；：" for line in poem.splitlines()[:-1]), poem


def test_predict_without_a_checkpoint_uses_the_bundled_model_and_says_so(batch):
    result = batch[0]["bundled_predict"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using the bundled model tang-lstm" in result.stderr
    assert len([poem for poem in result.stdout.strip().split("\n\n") if CJK.search(poem)]) == 2, result.stdout


def test_predict_takes_the_generation_request_flags(batch):
    sampled = [line for line in batch[0]["predict"].stdout.splitlines() if CJK.search(line)]
    result = batch[0]["predict_greedy"]
    assert result.returncode == 0, result.stdout + result.stderr
    greedy = ["".join(poem.split()) for poem in result.stdout.strip().split("\n\n") if CJK.search(poem)]
    # Temperature 0 is greedy decoding: the same poem three times (at the default temperature, three different ones).
    assert len(greedy) == 3 and len(set(greedy)) == 1, greedy
    assert all(classify(poem) is Form.WUJUE for poem in greedy), greedy
    assert len(set(sampled)) > 1, sampled


def test_plugins_lists_builtins_and_isolates_broken_and_clashing_ones(batch):
    result = batch[0]["plugins"]
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    for name, cls in (("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")):
        assert f"tangrnn_recurrent:{cls}" in rows[name] and " tangrnn " in rows[name] and rows[name].endswith("ok")
    assert "fake-broken" in rows["broken"] and "failed to import" in rows["broken"]
    assert "fake-good" in rows["tiny"] and rows["tiny"].endswith("ok")
    twins = [line for line in result.stdout.splitlines() if line.startswith("twin ")]
    assert len(twins) == 2 and all("name also registered by" in line for line in twins), twins


def test_plugin_autoload_can_be_switched_off(batch):
    results, _ = batch
    listing = results["plugins_off"]
    assert listing.returncode == 0, listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines()[1:] if line.strip()}
    # the tangrnn distribution's own plugins only (all seven), none of the test's fake distributions
    assert names == {"rnn", "lstm", "gru", "deep", "seq2seq", "bidirectional", "recursive"}, listing.stdout
    assert_one_line_error(results["autoload_off"], "unknown architecture 'tiny'", "TANGRNN_DISABLE_PLUGIN_AUTOLOAD")


def test_help_and_options(batch):
    results, _ = batch
    options = results["options"]
    assert options.returncode == 0 and "hidden_size" in options.stdout and "embedding_size" in options.stdout
    usage = options.stdout.splitlines()[0]
    assert usage == "usage: tangrnn fit --model.architecture gru [--model.architecture_options.OPTION VALUE ...]"
    flags = re.findall(r"^  (--\S+)", options.stdout, flags=re.MULTILINE)
    assert "--model.architecture_options.hidden_size" in flags
    assert all(flag.startswith("--model.architecture_options.") for flag in flags if flag not in ("--help",))
    listed = results["listed_option"]
    assert listed.returncode == 0, listed.stderr[-2000:]
    help_ = results["fit_help"]
    assert help_.returncode == 0, help_.stderr
    for option in ("--config", "--trainer.max_steps", "--model.architecture", "--data.corpus", "--ckpt_path"):
        assert option in help_.stdout
    printed = results["print_config"]
    assert printed.returncode == 0, printed.stderr
    assert "architecture: lstm" in printed.stdout and "batch_size: 16" in printed.stdout


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("invalid_yaml", ["invalid.yaml", "not valid YAML", "line 3"]),
        ("unknown_key", ["unknown option 'modle.architecture'", "--help"]),
        ("unknown_trainer_key", ["unknown option 'trainer.max_stepz'"]),
        ("unknown_trainer_flag", ["--trainer.max_stepz"]),
        ("wrong_type", ["data.batch_size", "expected int, got 'abc'"]),
        ("missing_config", ["nope.yaml", "does not exist"]),
        ("unknown_architecture", ["unknown architecture 'lstmm'", "gru, lstm", "seq2seq", "tangrnn plugins"]),
        ("unknown_architecture_option", ["'hiden_size'", "hidden_size"]),
        ("wrong_option_type", ["hidden_size: expected int, got wide", "tangrnn plugins --options lstm"]),
        ("broken_plugin", ["'broken'", "fake_broken:Net", "fake-broken", "libfoo", "uninstall"]),
        ("twin_plugin", ["'twin'", "fake-one", "fake-two", "uninstall one"]),
        ("missing_corpus", ["/nope.jsonl", "does not exist"]),
        ("random_xz", ["random.jsonl.xz", "not a valid xz file"]),
        ("broken_jsonl", ["broken.jsonl", "invalid JSON at line 11"]),
        ("english", ["english.txt", "Chinese"]),
        ("empty_corpus", ["empty.jsonl", "no poems"]),
        ("other_model_ckpt", ["other_model.ckpt", "not a tangrnn checkpoint"]),
        ("foreign_ckpt", ["foreign.ckpt", "not a tangrnn checkpoint", "tangrnn fit"]),
        ("truncated_ckpt", ["truncated.ckpt", "truncated, corrupt"]),
        ("truncated_resume", ["truncated.ckpt", "truncated, corrupt"]),
        ("garbage_ckpt", ["garbage.ckpt", "truncated, corrupt or no checkpoint"]),
        ("pickled_ckpt", ["pickled.ckpt", "not a tangrnn checkpoint", "pickled Python objects"]),
        ("missing_ckpt", ["nope.ckpt", "does not exist"]),
        ("no_ckpt", ["`tangrnn predict` needs a trained model", "--ckpt_path", "leave out --config"]),
        ("negative_lr", ["model.optimizer refused its options", "Invalid learning rate: -0.1", "init_args"]),
        ("negative_epochs", ["max_epochs", "-3", "fix the trainer options"]),
        ("ckpt_as_config", ["is not UTF-8 YAML text", "--ckpt_path"]),
        ("huge_seed", ["seed_everything must be from 0 to 4294967295", str(2**64)]),
        ("val_interval_over_epoch", ["trainer.val_check_interval (100000) is more than", "check_val_every_n_epoch"]),
        ("best_ckpt", ["--ckpt_path best", "best-step=N.ckpt"]),
        ("no_last_ckpt", ["--ckpt_path last", "no last*.ckpt under"]),
    ],
)
def test_user_errors_are_one_line(batch, case, fragments):
    result = batch[0][case]
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2
    assert "unexpected" not in result.stderr  # a known problem, not a suspected bug


def test_user_errors_overwrite_nothing(batch):
    _, before = batch
    changed = [str(path) for path, content in before.items() if path.read_bytes() != content]
    assert not changed


def test_debug_shows_the_traceback(batch):
    results, _ = batch
    for case in ("debug_flag", "debug_env"):
        result = results[case]
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "CorpusError" in result.stderr, result.stderr
        assert "tangrnn: error:" not in result.stderr


# -- every verb refuses a bad argument the same way: one line, status 2 --------------------------------------


@pytest.fixture(scope="module")
def bad_arguments(tmp_path_factory):
    """Bad arguments to every verb, in one process (none of them trains or reads a model)."""
    cases = {
        "unknown_verb": ["fitt", "--config", "c.yaml"],
        "not_a_verb": ["frobnicate"],
        "plugins": ["plugins", "--bogus"],
        "models": ["models", "--bogus"],
        "models_verb": ["models", "frob"],
        "models_card": ["models", "card", "tang-lstm", "extra"],
        "models_pack": ["models", "pack"],
        "data_build": ["data", "build", "--bogus"],
        "data_build_extra": ["data", "build", "--source", "s", "--bogus"],
        "data_info": ["data", "info", "--bogus"],
        "data_verb": ["data", "frob"],
        "data_no_verb": ["data"],
        "check": ["check", "--bogus"],
        "check_choice": ["check", "白日依山尽", "--tones", "medium"],
        "fit": ["fit", "--bogus"],
        "generate": ["generate", "--form", "五绝", "--bogus"],
    }
    return run_batch({name: {"argv": argv} for name, argv in cases.items()}, tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("unknown_verb", ["unknown verb 'fitt'", "did you mean 'fit'?", "run `tangrnn --help`"]),
        ("not_a_verb", ["unknown verb 'frobnicate'", "fit, validate, test, predict, generate, evaluate, plugins"]),
        ("plugins", ["unrecognized arguments: --bogus", "run `tangrnn plugins --help` for the usage"]),
        ("models", ["unrecognized arguments: --bogus", "run `tangrnn models --help` for the usage"]),
        ("models_verb", ["invalid choice: 'frob'", "'list', 'card', 'pack'", "`tangrnn models --help`"]),
        ("models_card", ["unrecognized arguments: extra", "run `tangrnn models card --help` for the usage"]),
        ("models_pack", ["required: --ckpt_path", "run `tangrnn models pack --help` for the usage"]),
        ("data_build", ["required: --source", "run `tangrnn data build --help` for the usage"]),
        ("data_build_extra", ["unrecognized arguments: --bogus", "run `tangrnn data build --help` for the usage"]),
        ("data_info", ["unrecognized arguments: --bogus", "run `tangrnn data info --help` for the usage"]),
        ("data_verb", ["invalid choice: 'frob'", "'build', 'info'", "run `tangrnn data --help` for the usage"]),
        ("data_no_verb", ["{build,info}", "run `tangrnn data --help` for the usage"]),
        ("check", ["unrecognized arguments: --bogus", "run `tangrnn check --help` for the usage"]),
        ("check_choice", ["--tones", "'medium'", "run `tangrnn check --help` for the usage"]),
        ("fit", ["--bogus", "`tangrnn fit --help`"]),
        ("generate", ["--bogus", "`tangrnn generate --help`"]),
    ],
)
def test_every_verb_refuses_a_bad_argument_in_one_line(bad_arguments, case, fragments):
    result = bad_arguments[case]
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2
    assert result.stdout == "" and "usage:" not in result.stderr  # no usage block, on either stream


def test_the_usage_lists_every_verb_of_the_table():
    from tangrnn_core.cli import USAGE, VERBS

    listed = re.findall(r"^  tangrnn (\w+)", USAGE, re.MULTILINE)
    assert listed == list(VERBS)


def test_help_and_a_mistyped_verb_import_neither_torch_nor_lightning():
    # `tangrnn --help` and `tangrnn fitt` answer at once: the table names modules, importing them only to run.
    code = (
        "import sys\n"
        "from tangrnn_core import cli\n"
        "for argv in (['--help'], ['fitt'], ['data', '--bogus']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'lightning', 'jsonargparse') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


# -- real processes for what the batch cannot show -----------------------------------------------------------


def test_a_parse_error_is_exactly_one_line_from_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: {max_steps: 3\n", encoding="utf-8")
    result = run_tangrnn("fit", "--config", str(bad))
    assert_one_line_error(result, "bad.yaml", "not valid YAML")
    assert result.stderr.strip().count("\n") == 0, result.stderr  # no usage block, no warnings
    assert result.stdout == ""
    assert bad.read_text(encoding="utf-8") == "trainer: {max_steps: 3\n"


def test_top_level_help():
    result = run_tangrnn("--help")
    assert result.returncode == 0, result.stderr
    assert "tangrnn fit" in result.stdout and "tangrnn plugins" in result.stdout


def test_known_foreign_errors_become_messages_with_a_fix():
    """What slips past the up-front checks (a file deleted meanwhile, a damaged `last` checkpoint) still reads well."""
    import pickle

    from tangrnn_core.cli import _known_user_error

    missing = _known_user_error(FileNotFoundError(2, "No such file or directory", "/runs/x.ckpt"))
    assert "/runs/x.ckpt" in missing and "check the path" in missing
    damaged = _known_user_error(RuntimeError("PytorchStreamReader failed reading zip archive: failed. More text."))
    assert "truncated or corrupt" in damaged and "More text" not in damaged
    assert "truncated or corrupt" in _known_user_error(pickle.UnpicklingError("invalid load key, 'x'."))
    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 10000000000000 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert _known_user_error(cpu).startswith("out of memory (tried to allocate 10000000000000 bytes); lower")

    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError's name, as CUDA raises it
        pass

    cuda = _known_user_error(OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; ...)"))
    assert cuda.startswith("out of memory (tried to allocate 20.00 MiB); lower --batch_size")
    assert "--data.batch_size" in _known_user_error(MemoryError())
    assert _known_user_error(ValueError("something else")) is None


def test_a_reader_that_goes_away_ends_generate_quietly(tmp_path):
    # `tangrnn generate ... | head -1`: no traceback, no error line; the status a shell gives SIGPIPE.
    command = f"{sys.executable} -m tangrnn_core generate --form 五绝 --num_poems 3000 --batch_size 64 | head -1"
    result = subprocess.run(
        ["bash", "-c", command + "; echo status=${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.splitlines()[-1] == "status=141", result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == 2 and result.stderr == ""


def test_a_checkpoint_the_user_may_not_read_is_not_called_corrupt(tmp_path, monkeypatch):
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.errors import CheckpointError

    path = tmp_path / "private.ckpt"
    path.write_bytes(b"PK")

    def refuse(*args, **kwargs):  # what torch.load raises for a file without read permission (root reads all)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match="permission denied; check the file's permissions") as caught:
        check_checkpoint(path)
    assert "corrupt" not in str(caught.value)
