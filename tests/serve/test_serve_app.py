"""Every route of `tangrnn serve` through HTTP (FastAPI's TestClient), on a tiny untrained checkpoint."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import run_tangrnn
from fastapi.testclient import TestClient
from tiny_server import tiny_checkpoint

from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE
from tangrnn_core.serve.app import Limits, create_app
from tangrnn_core.serve.model import load_model
from tangrnn_core.serve.schemas import SERVER_FIELDS, PoemsBody, request_fields

POEM = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_corpus):
    return tiny_checkpoint(tmp_path_factory.mktemp("serve"), small_corpus)


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_model(checkpoint)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model), raise_server_exceptions=False) as client:
        yield client


def post(client: TestClient, path: str, body: object):
    return client.post(path, json=body)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_model_describes_the_checkpoint(client, model):
    body = client.get("/v1/model").json()
    assert body["architecture"] == "lstm"
    assert body["vocabulary_size"] == len(model.vocabulary)
    assert body["name"] == "tiny.ckpt" and body["card"] is None and not body["bundled"]
    assert body["limits"]["max_poems"] == 64


def test_the_bundled_model_has_its_card():
    description = load_model().describe()
    assert description["bundled"] and description["name"] == "tang-lstm"
    assert description["card"].startswith("# tang-lstm")


def test_openapi_lists_the_request_fields_of_generate(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/poems", "/v1/check", "/v1/model", "/healthz"} <= set(schema["paths"])
    fields = schema["components"]["schemas"]["PoemsBody"]["properties"]
    assert list(fields) == [field.name for field in request_fields()]
    assert not set(SERVER_FIELDS) & set(fields)
    assert fields["num_poems"]["default"] == 4 and "batch_size" not in fields


def test_body_defaults_are_the_requests():
    defaults = PoemsBody().model_dump()
    assert defaults == {field.name: field.default for field in request_fields()}


def test_the_studio_starts_from_the_requests_temperature(client):
    # The page sends its temperature field with every request, so its initial value is the studio's default.
    field = re.search(r'<input id="temperature"[^>]*value="([^"]+)"', client.get("/").text)
    assert field is not None and float(field.group(1)) == DEFAULT_TEMPERATURE


def test_poems_come_with_the_checkers_report(client):
    body = {"form": "五绝", "acrostic": "春江", "tones": "strict", "rhyme": "auto", "num_poems": 2, "seed": 5}
    response = post(client, "/v1/poems", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["seed"] == 5 and len(answer["poems"]) == 2
    for record in answer["poems"]:
        assert [line[0] for line in record["lines"][:2]] == ["春", "江"] and record["form"] == "五绝"
        report = record["check"]
        assert report["passed"] and report["rhyme_group"] and report["pattern"]
        assert all(len(line["tones"]) == 5 for line in report["lines"])  # the tone of every character


def test_a_free_poem_says_why_it_has_no_report(client):
    answer = post(client, "/v1/poems", {"num_poems": 1, "seed": 1, "max_length": 3} | {}).json()
    assert "error" in answer  # max_length is the server's: refused
    answer = post(client, "/v1/poems", {"num_poems": 1, "seed": 1}).json()
    record = answer["poems"][0]
    assert record["check"] is not None or record["check_error"]


def test_without_a_seed_the_drawn_one_is_returned_and_repeats(client):
    first = post(client, "/v1/poems", {"form": "七绝", "num_poems": 1}).json()
    again = post(client, "/v1/poems", {"form": "七绝", "num_poems": 1, "seed": first["seed"]}).json()
    assert again["poems"] == first["poems"]


@pytest.mark.parametrize(
    "options",
    [
        {"form": "五律", "tones": "loose", "rhyme": "auto", "num_beams": 2, "num_poems": 3, "seed": 11},
        {"acrostic": "春风", "form": "七绝", "no_repeat": True, "temperature": 1.2, "top_k": 50, "seed": 12},
        {"template": "白日依山尽，□□□□□。欲穷□□□，更上一层楼。", "avoid": "愁", "top_p": 0.9, "seed": 13},
    ],
    ids=["beams tones", "acrostic no repeat", "template avoid"],
)
def test_same_seed_same_poems_as_generate(client, checkpoint, options):
    argv = [f"--{name}={str(value).lower() if isinstance(value, bool) else value}" for name, value in options.items()]
    result = run_tangrnn("generate", "--ckpt_path", str(checkpoint), *argv, "--output", "json")
    assert result.returncode == 0, result.stderr
    expected = [json.loads(line)["poem"] for line in result.stdout.splitlines() if line.startswith("{")]
    served = [record["poem"] for record in post(client, "/v1/poems", options).json()["poems"]]
    assert served == expected and len(served) == options.get("num_poems", 4)


def test_check(client):
    response = post(client, "/v1/check", {"poem": POEM})
    assert response.status_code == 200
    report = response.json()
    assert report["passed"] and report["form"] == "五绝" and report["tones"] == "strict"
    assert report["rhyme_group"] == "十一尤"
    loose = post(client, "/v1/check", {"poem": POEM, "tones": "loose"}).json()
    assert loose["tones"] == "loose"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"top_p": 0}, "top_p", "top_p must be in (0, 1], got 0"),
        ({"temperature": -1}, "temperature", "temperature must be 0 or more"),
        ({"top_k": -2}, "top_k", "top_k must be 0 (off) or more"),
        ({"num_poems": 0}, "num_poems", "num_poems must be at least 1"),
        ({"num_beams": 0}, "num_beams", "num_beams must be at least 1"),
        ({"prefix": "abc"}, "prefix", "--prefix has characters not in the model's vocabulary"),
        ({"title": "春夜"}, "title", "does not read titles"),
        ({"acrostic": "春江"}, "acrostic", "an acrostic needs a line length"),
        ({"rhyme": "auto"}, "rhyme", "need a regular form"),
        ({"form": "八绝"}, "form", ""),
        ({"lines": 5, "chars": 5}, "lines", "--lines must be 4 or 8"),
        ({"num_poems": 65}, "num_poems", "num_poems must be at most 64"),
        ({"num_beams": 8, "num_poems": 33}, "num_beams", "num_beams x num_poems must be at most 256"),
        ({"seed": -1}, "seed", "seed must be from 0"),
        ({"tones": "wild"}, "tones", "'strict', 'loose' or 'off'"),
        ({"num_poems": "many"}, "num_poems", "valid integer"),
        ({"ckpt_path": "/etc/passwd"}, "ckpt_path", "unknown field 'ckpt_path'"),
        ({"batch_size": 8}, "batch_size", "unknown field"),
        ([1, 2], None, "must be a JSON object"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, body, field, words):
    response = post(client, "/v1/poems", body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert set(answer) == {"error", "field"} and answer["field"] == field
    assert words in answer["error"] and "\n" not in answer["error"]


def test_the_same_words_as_the_command_line(client, checkpoint):
    result = run_tangrnn("generate", "--ckpt_path", str(checkpoint), "--top_p", "0")
    served = post(client, "/v1/poems", {"top_p": 0}).json()["error"]
    assert result.returncode == 2 and served in result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [(b'{"temperature": NaN}', "finite"), (b"{bad json", "not valid JSON"), (b"", "the body is empty")],
)
def test_bodies_json_cannot_carry(client, content, words):
    response = client.post("/v1/poems", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422 and words in response.json()["error"]


def test_curl_d_without_a_json_content_type(client):
    # `curl -d '{...}'` sends application/x-www-form-urlencoded: the body is read as JSON all the same.
    body = json.dumps({"poem": POEM}, ensure_ascii=False).encode()
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/v1/check", content=body, headers=form).json()["passed"]


def test_check_refusals(client):
    for body, field in (({"poem": "abc"}, "poem"), ({"poem": POEM, "tones": "off"}, "tones"), ({}, "poem")):
        response = post(client, "/v1/check", body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    pattern = post(client, "/v1/check", {"poem": POEM, "pattern": "nonsense"})
    assert pattern.status_code == 422 and pattern.json()["field"] == "pattern"


def test_a_lone_surrogate_is_answered_in_json(client):
    response = client.post("/v1/check", content=b'{"poem": "\\ud800"}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "poem"


def test_large_bodies_are_413(client):
    big = json.dumps({"avoid": "愁" * 30_000}, ensure_ascii=False).encode()
    response = client.post("/v1/poems", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "64 KiB" in response.json()["error"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"avoid": "'
        for _ in range(70):
            yield b"a" * 1024
        yield b'"}'

    streamed = client.post("/v1/poems", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_unknown_routes_are_json(client):
    assert client.get("/nowhere").json()["error"] == "Not Found"
    assert client.get("/v1/poems").status_code == 405


def test_time_limit_504_then_busy_503(model):
    def slow(requests):
        time.sleep(1.5)
        return [["白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"]] * len(requests)

    with TestClient(create_app(model, Limits(timeout=0.3), writer=slow)) as client:
        first = post(client, "/v1/poems", {})
        assert first.status_code == 504 and "0.3 s" in first.json()["error"]
        # The first decode still holds the cores: the next request waits its whole limit, then is refused.
        second = post(client, "/v1/poems", {})
        assert second.status_code == 503 and "busy" in second.json()["error"]
        assert client.get("/healthz").status_code == 200
        time.sleep(1.5)
        assert post(client, "/v1/poems", {}).status_code == 504


def test_limits_are_the_servers(model):
    with TestClient(create_app(model, Limits(max_poems=2, max_batch_size=4))) as client:
        assert post(client, "/v1/poems", {"num_poems": 3}).json()["field"] == "num_poems"
        assert post(client, "/v1/poems", {"num_poems": 2, "num_beams": 3}).json()["field"] == "num_beams"
        assert post(client, "/v1/poems", {"num_poems": 2, "num_beams": 2, "seed": 1}).status_code == 200


def test_requests_that_arrive_together_share_a_batch_and_keep_their_poems(checkpoint):
    import asyncio

    import httpx

    from tangrnn_core.decoding import PoemRequest, write_poems
    from tangrnn_core.serve.decoding import write_with

    fp32 = load_model(checkpoint, "none")  # int8 scales activations by the batch; float rows are independent
    batches: list[int] = []
    decode = write_with(fp32)

    def recording(requests):
        batches.append(len(requests))
        time.sleep(0.2)  # the first batch holds the decoder while the others arrive
        return decode(requests)

    bodies = [{"form": "五绝", "num_poems": 1, "seed": seed} for seed in range(6)]
    bodies += [{"form": "七绝", "acrostic": "春江", "tones": "strict", "num_poems": 2, "seed": 9}]
    app = create_app(fp32, Limits(max_batch_size=8), writer=recording)

    async def send_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            return await asyncio.gather(*(client.post("/v1/poems", json=body) for body in bodies))

    responses = asyncio.run(send_all())
    assert [response.status_code for response in responses] == [200] * len(bodies)
    assert sum(batches) == len(bodies) and max(batches) > 1 and len(batches) < len(bodies)
    for body, response in zip(bodies, responses):
        alone = write_poems(fp32.net, fp32.vocabulary, PoemRequest(**body))
        assert [record["poem"] for record in response.json()["poems"]] == alone
    with TestClient(app) as client:
        assert client.get("/v1/model").json()["decoded"] == {"batches": len(batches), "requests": len(bodies)}


def test_a_batch_holds_at_most_max_batch_size_rows(model):
    import asyncio

    import httpx

    batches: list[int] = []

    def recording(requests):
        batches.append(sum(request.num_poems for request in requests))
        time.sleep(0.1)
        return [[POEM] * request.num_poems for request in requests]

    app = create_app(model, Limits(max_batch_size=5), writer=recording)

    async def send_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            return await asyncio.gather(*(client.post("/v1/poems", json={"num_poems": 2}) for _ in range(6)))

    assert all(response.status_code == 200 for response in asyncio.run(send_all()))
    assert sum(batches) == 12 and max(batches) <= 5


def test_the_decoding_thread_leaves_a_core_to_the_event_loop():
    from tangrnn_core.serve.decoding import decode_threads

    assert [decode_threads(cores) for cores in (1, 2, 4, 16)] == [1, 1, 3, 15]
