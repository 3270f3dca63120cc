"""`tangrnn serve` as a user runs it: its one-line refusals, and a real server on a free port."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from conftest import assert_one_line_error, run_tangrnn
from tiny_server import serving


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--port", "x"], "argument --port: invalid int value"),
        (["--port", "70000"], "--port must be from 0 to 65535"),
        (["--max_poems", "0"], "--max_poems must be at least 1"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--ckpt_path", "/nowhere/x.ckpt"], "does not exist"),
        (["--ckpt_path", "README.md"], "cannot read checkpoint"),
        (["--ckpt_path", "last"], "names no file"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_options_are_one_line(argv, words):
    assert_one_line_error(run_tangrnn("serve", *argv, timeout=120), words)


def test_help_lists_the_options():
    result = run_tangrnn("serve", "--help")
    assert result.returncode == 0
    for option in ("--ckpt_path", "--host", "--port", "--max_batch_size", "--max_poems", "--timeout"):
        assert option in result.stdout


def test_help_imports_neither_torch_nor_fastapi():
    # `tangrnn serve --help` answers at once: the defaults come from serve/limits.py alone.
    code = (
        "import sys\n"
        "from tangrnn_core import cli\n"
        "cli.main(['serve', '--help'])\n"
        "print(sorted(m for m in ('torch', 'lightning', 'fastapi', 'uvicorn') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_a_real_server_with_the_bundled_model():
    with serving("--max_poems", "2") as base:
        body = {"form": "五绝", "acrostic": "春江花月", "tones": "strict", "rhyme": "auto", "num_poems": 2, "seed": 7}
        answer = httpx.post(f"{base}/v1/poems", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        poems = answer.json()["poems"]
        assert len(poems) == 2 and all(record["check"]["passed"] for record in poems)
        assert [line[0] for line in poems[0]["lines"]] == list("春江花月")
        too_many = httpx.post(f"{base}/v1/poems", json={"num_poems": 3}, timeout=30)
        assert too_many.status_code == 422 and too_many.json()["field"] == "num_poems"
        assert httpx.get(f"{base}/v1/model", timeout=10).json()["name"] == "tang-lstm"
        page = httpx.get(base, timeout=10)
        assert page.status_code == 200 and "诗坊" in page.text
        assert "script-src 'sha256-" in page.headers["content-security-policy"]
