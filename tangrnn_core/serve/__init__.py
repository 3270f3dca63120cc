"""``tangrnn serve``: poems and the checker over HTTP (FastAPI on uvicorn).

One module per job: :mod:`.schemas` (the request bodies, derived from
:class:`~tangrnn_core.decoding.request.PoemRequest`), :mod:`.model` (the network a server decodes with),
:mod:`.decoding` (the one function that writes poems, and the batcher that decodes the requests that arrive
together, each within a time limit), :mod:`.limits` (what
one request may ask), :mod:`.errors` (every refusal as ``{"error": ..., "field": ...}``), :mod:`.app` (the
routes and the page) and :mod:`.command` (the verb); the poem studio is ``page/index.html``.
"""
