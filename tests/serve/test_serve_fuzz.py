"""Arbitrary JSON bodies never get a 500 from /v1/poems or /v1/check: every answer is a JSON object."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_server import tiny_checkpoint

from tangrnn_core.serve.app import Limits, create_app
from tangrnn_core.serve.model import load_model
from tangrnn_core.serve.schemas import request_fields

NAMES = [field.name for field in request_fields()]
VERSE = "春江花月夜白日依山尽黄河入海流□_*，。？！ ab1\n"

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-2, max_value=12),
    st.floats(),  # NaN and the infinities too: the body is written as Python's JSON writes them
    st.text(alphabet=VERSE, max_size=40),
    st.text(max_size=12),  # any code point, lone surrogates included
    st.sampled_from(["五绝", "七律", "strict", "loose", "off", "auto", "东", "平起首句入韵", "wujue"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
poems_bodies = st.one_of(
    st.dictionaries(st.sampled_from([*NAMES, "ckpt_path", "batch_size", "max_length", "x"]), values, max_size=6),
    values,
)
# Bodies of known fields with values near the valid ones, so that many reach the decoder and the checker.
verse = st.text(alphabet="春江花月夜白日依山尽黄河入海流□_，。", max_size=24)
plausible_bodies = st.fixed_dictionaries(
    {},
    optional={
        "form": st.sampled_from(["五绝", "七绝", "五律", "七律", "wujue", "x"]),
        "chars": st.integers(0, 8),
        "lines": st.integers(0, 9),
        "acrostic": verse,
        "first_line": verse,
        "prefix": verse,
        "template": verse,
        "avoid": verse,
        "tones": st.sampled_from(["strict", "loose", "off"]),
        "pattern": st.sampled_from(["auto", "平起首句入韵", "ze-rhymed", "x"]),
        "rhyme": st.sampled_from(["auto", "东", "一东", "off", "x", ""]),
        "temperature": st.floats(0, 3),
        "top_k": st.integers(0, 2**40),
        "top_p": st.floats(0.01, 1),
        "num_beams": st.integers(1, 4),
        "no_repeat": st.booleans(),
        "seed": st.integers(0, 2**64 - 1),
        "num_poems": st.integers(1, 2),
        "iterations": st.integers(1, 3),
    },
)
check_bodies = st.one_of(
    st.fixed_dictionaries(
        {"poem": st.one_of(st.text(alphabet=VERSE, max_size=40), values)},
        optional={"tones": values, "strict": values, "pattern": values, "file": values},
    ),
    values,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory, small_corpus):
    model = load_model(tiny_checkpoint(tmp_path_factory.mktemp("fuzz"), small_corpus))
    # Small limits keep the decodes of the bodies that pass quick on two cores.
    with TestClient(create_app(model, Limits(max_poems=4, max_batch_size=8)), raise_server_exceptions=False) as client:
        yield client


def _post(client: TestClient, path: str, body: object) -> None:
    response = client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert response.status_code != 500, (body, response.text)
    answer = response.json()
    assert isinstance(answer, dict)
    if response.status_code != 200:
        assert set(answer) == {"error", "field"} and "\n" not in answer["error"], answer


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=poems_bodies)
def test_poems_never_500(client, body):
    _post(client, "/v1/poems", body)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=plausible_bodies)
def test_plausible_poems_never_500(client, body):
    _post(client, "/v1/poems", body)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=check_bodies)
def test_check_never_500(client, body):
    _post(client, "/v1/check", body)
