"""``POST /v1/poems`` on LitServe: the same model, decoder and answer as ``tangrnn serve``, batched by LitServe.

Only for ``bench/serve_load.py``, which measures it beside ``tangrnn serve`` (FastAPI + uvicorn with tangrnn's
own batcher) to choose the serving library by measurement. LitServe collects up to ``--max_batch_size``
requests, waiting at most ``--batch_timeout`` seconds for them, and hands the batch to ``predict``, which
decodes it with :func:`~tangrnn_core.decoding.write.write_together`, exactly as ``tangrnn serve`` does. It has
none of ``tangrnn serve``'s refusals and limits: a benchmark, not a second server.

    python bench/litserve_poems.py --port 8001 --max_batch_size 64 --batch_timeout 0.005
"""

from __future__ import annotations

import argparse
import os
import secrets

import litserve
import torch

from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_together
from tangrnn_core.serve.app import _with_report
from tangrnn_core.serve.model import load_model


class PoemsAPI(litserve.LitAPI):
    """Bodies as ``tangrnn serve`` takes them; answers as it gives them."""

    def setup(self, device: str) -> None:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        self.model = load_model(None, "auto")

    def decode_request(self, request: dict) -> PoemRequest:  # LitServe calls it with `request=`
        return PoemRequest(**{"seed": secrets.randbits(62), **request})

    def predict(self, requests: list[PoemRequest]) -> list[tuple[PoemRequest, list[str]]]:
        written = write_together(self.model.net, self.model.vocabulary, requests)
        return [(request, poems) for request, poems in zip(requests, written)]

    def encode_response(self, output: tuple[PoemRequest, list[str]]) -> dict:
        request, poems = output
        tones = request.tones if request.tones != "off" else "strict"
        return {"seed": request.seed, "poems": [_with_report(poem, tones) for poem in poems]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max_batch_size", type=int, default=64)
    parser.add_argument("--batch_timeout", type=float, default=0.005, help="seconds to wait for a batch to fill")
    args = parser.parse_args()
    api = PoemsAPI(max_batch_size=args.max_batch_size, batch_timeout=args.batch_timeout, api_path="/v1/poems")
    server = litserve.LitServer(api, accelerator="cpu", devices=1, healthcheck_path="/healthz", timeout=60)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
