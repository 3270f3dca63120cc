"""Requests written together (one shared batch, as ``tangrnn serve`` batches them) get the poems each gets alone."""

from __future__ import annotations

import pytest

from tangrnn_core.decoding import PoemRequest, write_poems
from tangrnn_core.decoding import decoder as decoder_module
from tangrnn_core.decoding.write import write_together
from tangrnn_core.errors import ConfigError
from tangrnn_core.serve.model import load_model


@pytest.fixture(scope="module")
def bundled():
    # fp32: int8 weights scale activations by the whole batch, so only float weights make rows independent.
    return load_model(None, "none")


MIXED = [
    PoemRequest(form="五绝", num_poems=2, seed=1),
    PoemRequest(form="五绝", num_poems=1, seed=2),  # same lane as the first: shares its processors
    PoemRequest(form="七律", num_poems=1, seed=3, temperature=1.1, top_k=40),
    PoemRequest(form="五绝", acrostic="春江花月", tones="strict", rhyme="auto", num_poems=2, seed=4),
    PoemRequest(chars=7, lines=4, top_p=0.9, num_poems=1, seed=5, avoid="愁泪"),
    PoemRequest(num_poems=2, seed=6, max_length=40),  # free form: rows end at different steps
    PoemRequest(form="五绝", temperature=0, num_poems=1, seed=7),  # greedy
    PoemRequest(form="七绝", first_line="白日依山尽", num_poems=1, seed=8),  # impossible: refused in place
    PoemRequest(form="五绝", prefix="明月", num_poems=1, seed=9),  # another prefix: another shared batch
    PoemRequest(form="五绝", num_beams=2, num_poems=1, seed=10),  # beams: written on its own
    PoemRequest(form="五律", template="白日依山尽，□□□□□。□□□□□，□□□□□。", num_poems=1, seed=11),
]


def test_each_request_gets_the_poems_it_gets_alone(bundled):
    together = write_together(bundled.net, bundled.vocabulary, MIXED)
    assert len(together) == len(MIXED)
    for request, poems in zip(MIXED, together):
        try:
            alone = write_poems(bundled.net, bundled.vocabulary, request)
        except ConfigError as error:
            assert isinstance(poems, ConfigError) and str(poems) == str(error)
            continue
        assert poems == alone, request


def test_requests_that_can_share_take_one_pass_of_the_network(bundled, monkeypatch):
    calls = []
    real = decoder_module._decode

    def counting(net, vocabulary, search, *args):
        calls.append(search.rows)
        return real(net, vocabulary, search, *args)

    monkeypatch.setattr(decoder_module, "_decode", counting)
    requests = [PoemRequest(form="五绝", num_poems=1, seed=seed) for seed in range(5)]
    requests.append(PoemRequest(form="七绝", tones="loose", num_poems=3, seed=9))
    results = write_together(bundled.net, bundled.vocabulary, requests)
    assert calls == [8]
    assert [len(poems) for poems in results] == [1, 1, 1, 1, 1, 3]
    assert len({poems[0] for poems in results[:5]}) == 5  # each seed its own stream


def test_a_lane_ends_at_its_own_length(bundled):
    short, long = PoemRequest(form="五绝", num_poems=1, seed=1), PoemRequest(form="七律", num_poems=1, seed=1)
    first, second = write_together(bundled.net, bundled.vocabulary, [short, long])
    assert len(first[0]) == 24 and len(second[0]) == 64
