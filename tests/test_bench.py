"""Benchmark scripts run small as smoke checks: the GPU check on the CPU (it must keep working until a GPU
machine runs it), the regulated-verse benchmark, whose pass rates check the constraints end to end, and the
free-poem benchmark, which checks that dropping finished poems changes none."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_end_to_end_on_the_cpu():
    command = [
        sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny", "--precisions", "32-true",
        "--steps", "2", "--warmup", "1", "--max_poems", "300", "--batch", "4",
        "--rounds", "1", "--single", "2",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "measured matmul peak" in out
    training = out.split("training,")[1].split("generation,")[0]
    row = next(line for line in training.splitlines() if line.startswith("32-true"))
    assert float(row.split()[1].replace(",", "")) > 0  # characters per second
    generation = out.split("generation,")[1]
    assert sum(line.startswith(("fp32", "bf16")) for line in generation.splitlines()) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine: the check would run for real")
def test_gpu_check_says_so_without_a_gpu():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "no CUDA device here" in result.stderr


def test_constrained_generation_bench_measures_batch_sizes_side_by_side():
    command = [
        sys.executable, str(ROOT / "bench" / "constrained_generation.py"), "--train_steps", "2",
        "--batch", "8,16", "--rounds", "1", "--modes", "strict",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:2] in ("8 ", "16")]
    assert [(row[0], row[1]) for row in rows] == [("8", "form"), ("8", "tones"), ("16", "form"), ("16", "tones")]
    for row in rows:
        assert float(row[-6].replace(",", "")) > 0  # poems per second
    # every strictly constrained poem passes tangrnn check --strict, at every batch size
    assert [row[-2] for row in rows if row[1] == "tones"] == ["100.0%", "100.0%"]


def test_constrained_generation_bench_prices_nucleus_sampling_on_the_bundled_model():
    bundled = ROOT / "tangrnn_core" / "models" / "tang-lstm.pt"
    command = [
        sys.executable, str(ROOT / "bench" / "constrained_generation.py"), "--ckpt_path", str(bundled),
        "--batch", "8", "--rounds", "1", "--modes", "nucleus", "--quantize", "int8",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("     8 ")]
    assert [row[1:3] for row in rows] == [["form", "only"], ["form,", "top_p"]], result.stdout
    assert all(float(row[-6].replace(",", "")) > 0 for row in rows)


def test_constrained_generation_bench_refuses_an_unknown_mode():
    command = [sys.executable, str(ROOT / "bench" / "constrained_generation.py"), "--modes", "strict,fast"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown mode(s) fast" in result.stderr


def test_free_generation_bench_runs_both_sides_on_the_same_poems():
    command = [
        sys.executable, str(ROOT / "bench" / "free_generation.py"), "--train_steps", "2", "--batch", "8",
        "--rounds", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same poems on both sides: yes" in result.stdout
    sides = [line.split()[0] for line in result.stdout.splitlines() if line.startswith(("keep", "drop"))]
    assert sides == ["keep", "drop"]


def test_generate_throughput_bench_measures_batch_sizes_side_by_side():
    command = [
        sys.executable, str(ROOT / "bench" / "generate_throughput.py"), "--vocab_size", "300", "--batch", "4,8",
        "--rounds", "1", "--single", "1", "--bf16", "never",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("fp32", "int8"))]
    labels = [(row[0], row[1]) for row in rows]
    assert labels == [(w, n) for w in ("fp32", "int8") for n in ("one", "4", "8")]
    assert all(float(row[-3].replace(",", "")) > 0 for row in rows)  # poems per second


def test_recipe_study_trains_candidates_records_them_and_tabulates_their_curves(tmp_path):
    record = tmp_path / "record.json"
    command = [
        sys.executable, str(ROOT / "bench" / "recipe_study.py"), "--minutes", "0.15",
        "--candidates", "awd-all", "awd-all-batch128", "--tiny", "--max_poems", "300", "--val_every", "2",
        "--output", str(tmp_path / "curves.json"), "--root", str(tmp_path / "runs"), "--record", str(record),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"cores \((avx2|flags unknown)", result.stdout.splitlines()[0])  # the machine, named
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("awd-all "))
    assert float(row[1]) > 0 and int(row[2]) >= 2  # steps per second, steps trained
    median, highest = map(float, row[-1].split("/"))  # the load average while it trained
    assert 0 <= median <= highest
    assert "at equal steps" in result.stdout
    import json

    curves = json.loads((tmp_path / "curves.json").read_text(encoding="utf-8"))
    assert [curve["name"] for curve in curves] == ["awd-all", "awd-all-batch128"]
    curve = curves[0]
    assert len(curve["curve"]) >= 1 and all(ppl > 1 for _, _, ppl in curve["curve"])
    assert len(curve["load_run"]) == 2 and curve["steps"] == curve["curve"][-1][1]
    assert curve["precision"] in ("32-true", "bf16-mixed") and curve["minutes"] == 0.15
    # the cosine followed the clock, with no step limit: the budget alone ended the run
    config = (tmp_path / "runs" / "awd-all" / "run" / "lightning_logs" / "version_0" / "config.yaml").read_text()
    assert "schedule_by: time" in config and "max_steps: -1" in config
    # the record holds what --output holds, and its report prints the same table from it, without training
    assert json.loads(record.read_text(encoding="utf-8")) == curves
    shown = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recipe_study.py"), "--report", str(record)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "study options: --data.max_poems 300" in shown.stdout
    assert next(line.split() for line in shown.stdout.splitlines() if line.startswith("awd-all ")) == row


def test_recipe_study_report_keeps_machines_and_budgets_apart(tmp_path):
    def run(name, machine, precision, minutes, curve):
        return {
            "name": name, "about": "", "minutes": minutes, "date": "2026-12-03 15:20 UTC", "machine": machine,
            "cores": 2, "precision": precision, "torch": "2.13.0+cpu", "steps": curve[-1][1],
            "steps_per_second": curve[-1][1] / (curve[-1][0] * 60), "load_run": [2.0, 2.1], "study_options": [],
            "curve": curve,
        }  # fmt: skip

    import json

    avx2, bf16 = "AMD EPYC, 2 cores (avx2)", "AMD EPYC, 2 cores (avx2 avx512_bf16 avx512_vnni)"
    record = tmp_path / "record.json"
    record.write_text(
        json.dumps(
            [
                run("awd-all", avx2, "32-true", 60, [[20, 999, 150.0], [40, 1999, 110.0], [60, 2999, 95.0]]),
                run("awd-all", bf16, "bf16-mixed", 60, [[10, 999, 149.0], [20, 1999, 111.0], [60, 5999, 84.0]]),
                run("awd-all-2x1024", avx2, "32-true", 60, [[50, 999, 140.0], [60, 1203, 131.0]]),
            ]
        ),
        encoding="utf-8",
    )
    shown = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recipe_study.py"), "--report", str(record)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    tables = shown.stdout.strip().split("\n\n")
    assert [table.splitlines()[0].split(";")[0] for table in tables] == [
        f"{avx2}, 32-true, torch 2.13.0+cpu",
        f"{bf16}, bf16-mixed, torch 2.13.0+cpu",
    ]
    by_minutes = tables[0].split("at equal steps")[0].splitlines()
    rows = {line.split()[0]: line.split() for line in by_minutes if line.startswith("awd-all")}
    assert rows["awd-all"][3:7] == ["-", "150.0", "110.0", "95.0"]  # at 15, 30, 45 and 60 minutes
    assert rows["awd-all-2x1024"][3:7] == ["-", "-", "-", "131.0"]
    # side by side at the one step both reached: the wider network learns more per step, at a third of the speed
    equal = tables[0].split("at equal steps")[1].splitlines()
    assert equal[1].split() == ["candidate", "step", "999"]
    assert equal[2].split() == ["awd-all", "150.0"] and equal[3].split() == ["awd-all-2x1024", "140.0"]
    assert "at equal steps" not in tables[1]  # one candidate alone


def test_recipe_study_report_needs_a_record(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recipe_study.py"), "--report", str(tmp_path / "none.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "no record at" in result.stderr


def test_compare_architectures_records_a_plugin_and_reports_it_under_its_machine(tmp_path):
    record = tmp_path / "families.json"
    script = str(ROOT / "bench" / "compare_architectures.py")
    command = [
        sys.executable, script, "--minutes", "0.05", "--plugins", "gru", "--num-poems", "4", "--record", str(record),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.match(r".+, \d+ cores \(.+\), (32-true|bf16-mixed), torch ", result.stdout)  # the machine, named
    row = next(line for line in result.stdout.splitlines() if line.startswith("| gru |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert int(cells[3]) >= 1 and float(cells[4]) > 1  # steps trained, test perplexity
    median, highest = map(float, cells[-1].split("/"))
    assert 0 <= median <= highest
    import json

    (entry,) = json.loads(record.read_text(encoding="utf-8"))
    assert entry["plugin"] == "gru" and entry["minutes"] == 0.05 and entry["num_poems"] == 4
    shown = subprocess.run([sys.executable, script, "--report", str(record)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert row in shown.stdout.splitlines()  # the same row, printed from the record without training


def test_recipe_study_refuses_an_unknown_candidate():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recipe_study.py"), "--candidates", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "unknown candidate(s) nope" in result.stderr


def test_decoding_sweep_scores_each_setting_under_a_judge(tmp_path):
    from tangrnn_core.models import bundled_model

    judge = str(bundled_model().path)  # any checkpoint will do for a smoke check
    command = [
        sys.executable, str(ROOT / "bench" / "decoding_sweep.py"), "--judge_ckpt_path", judge,
        "--temperatures", "0.7", "1.0", "--top_p", "0.9", "--num_poems", "8", "--form", "五绝",
        "--no_repeat", "false", "true", "--output", str(tmp_path / "sweep.json"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    sweep = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert [(row["temperature"], row["top_p"], row["no_repeat"]) for row in sweep["rows"]] == [
        (0.7, 0.9, False), (0.7, 0.9, True), (1.0, 0.9, False), (1.0, 0.9, True)
    ]  # fmt: skip
    for row in sweep["rows"]:
        assert row["judge_ppl"] > 1 and 0 < row["distinct_2"] <= 1 and row["form_rate"] == 1.0


def test_serve_load_measures_batched_against_one_at_a_time(tmp_path):
    command = [
        sys.executable, str(ROOT / "bench" / "serve_load.py"), "--clients", "1", "4", "--seconds", "2",
        "--requests", "12", "--output", str(tmp_path / "load.json"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("tangrnn")]
    rows = [row for row in rows if row[1].isdigit()]  # the table, not the ratio lines under it
    assert [(row[0], row[1]) for row in rows] == [
        ("tangrnn", "1"), ("tangrnn", "4"), ("tangrnn-one-at-a-time", "1"), ("tangrnn-one-at-a-time", "4")
    ]  # fmt: skip
    assert all(row[6] == "0" and float(row[3]) > 0 for row in rows)  # no errors, some poems
    assert "tangrnn / one at a time, 4 clients:" in result.stdout


def test_bf16_parity_trains_both_precisions_on_one_schedule(tmp_path):
    command = [
        sys.executable, str(ROOT / "bench" / "bf16_parity.py"), "--steps", "4", "--val_every", "2",
        "--max_poems", "300", "--tiny", "--root", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "3"]
    assert all(0.9 < float(row[3]) < 1.1 for row in rows)  # a tiny model: bf16 within 10% of fp32


def test_startup_bench_times_every_command_and_compares_the_two_ways():
    command = [sys.executable, str(ROOT / "bench" / "startup.py"), "--rounds", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    names = ("python -c pass", "import torch", "tangrnn check POEM", "tangrnn generate", "int8", "through LightningCLI")
    for name in names:
        row = next(line for line in lines if name in line)
        assert len([token for token in row.split() if token.replace(".", "").isdigit()]) >= 3, row
    assert lines[-1].startswith("first poem: ") and "without Lightning" in lines[-1]


def test_weights_choice_bench_times_each_format_with_its_making_and_names_auto():
    command = [sys.executable, str(ROOT / "bench" / "weights_choice.py"), "--poems", "1,16", "--rounds", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    header = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["poems"])
    formats = header.split()[1:-3]
    assert formats[0] == "none" and set(formats) <= {"none", "int8", "bf16"}
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["1"], ["16"])]
    assert [row[0] for row in rows] == ["1", "16"]
    for row in rows:
        seconds = [float(value) for value in row[1 : 1 + len(formats)]]
        assert all(value > 0 for value in seconds)
        assert row[-3] == formats[seconds.index(min(seconds))]  # the fastest column names the fastest
        assert float(row[-1]) >= 1.0  # auto against the fastest
    assert {row[-2] for row in rows} == {"int8" if "int8" in formats else "none"}


def test_train_throughput_splits_the_step_into_network_and_loop():
    command = [
        sys.executable, str(ROOT / "bench" / "train_throughput.py"), "--rounds", "1", "--steps", "3",
        "--precision", "32", "--chunk_sizes", "512,0",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("32 ")]
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert [row[1] for row in cells] == [
        "plain PyTorch loop (full logits)",
        "tangrnn's network and loss, plain loop",
        "tangrnn fit, loss chunk 512",
        "tangrnn fit, loss chunk off (full logits)",
    ]
    for row in cells:
        assert float(row[2].replace(",", "")) > 0  # characters per second


def test_poets_reference_sets_real_poems_beside_the_model_s(tmp_path, small_corpus):
    config = tmp_path / "data.yaml"
    config.write_text(f"data:\n  corpus: {small_corpus}\n  val_fraction: 0.1\n  test_fraction: 0.1\n", encoding="utf-8")
    command = [
        sys.executable, str(ROOT / "bench" / "poets_reference.py"), "--num_poems", "6", "--draws", "2",
        "--config", str(config),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [(row[0], row[1]) for row in rows] == [
        (form, who) for form in ("五绝", "七绝", "五律", "七律") for who in ("poets", "model")
    ]
    for row in rows:
        values = [float(cell) for cell in row[2:] if not cell.startswith("(")]
        assert len(values) == 6 and all(0 <= value <= 1 for value in values)


def test_repeats_leave_reduplication_alone():
    sys.path.insert(0, str(ROOT / "bench"))
    from poets_reference import repeats

    assert repeats("青青河畔草，郁郁园中柳。") == (0, 10)
    assert repeats("春风吹春草，明月照明河。") == (2, 10)
