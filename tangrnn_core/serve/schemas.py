"""The JSON bodies of the server, derived from :class:`~tangrnn_core.decoding.request.PoemRequest`.

``POST /v1/poems`` takes the request's fields themselves (one list of options for the command line and the
server): :data:`PoemsBody` is built from :func:`dataclasses.fields` with the same defaults and the attribute
docstrings as descriptions, less :data:`SERVER_FIELDS`, which the server decides. Unknown fields are refused, so
no body can name a file (there is no ``ckpt_path``) or set what the server limits.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tangrnn_core.decoding.request import PoemRequest

__all__ = ["SERVER_FIELDS", "CheckBody", "PoemsBody", "request_fields", "to_request"]

#: PoemRequest fields a client may not set: rows decoded together and the length of free poems are the
#: server's (its --max_batch_size bounds the rows; the defaults are those of `tangrnn generate`).
SERVER_FIELDS = ("batch_size", "max_length")

#: Refused in every body: NaN and infinities (JSON has none, Python's parser reads them) and unknown fields.
_STRICT_BODY = ConfigDict(extra="forbid", allow_inf_nan=False)


def request_fields() -> list[dataclasses.Field]:
    """The fields of :class:`PoemRequest` that a ``POST /v1/poems`` body may set, in declaration order."""
    return [field for field in dataclasses.fields(PoemRequest) if field.name not in SERVER_FIELDS]


def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstring under each annotated attribute of ``cls`` (the help of ``tangrnn generate``'s flags)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for statement, following in zip(body, body[1:]):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def _build_poems_body() -> type[BaseModel]:
    # The dataclass's annotations are strings (postponed evaluation): resolve them in its module.
    hints = typing.get_type_hints(PoemRequest)
    docs = _attribute_docs(PoemRequest)
    definitions: dict[str, Any] = {
        field.name: (hints[field.name], Field(field.default, description=docs.get(field.name)))
        for field in request_fields()
    }
    return create_model(
        "PoemsBody",
        __config__=_STRICT_BODY,
        __doc__="The poems to write: the options of `tangrnn generate` (PoemRequest), less the server's own.",
        **definitions,
    )


#: The body of ``POST /v1/poems``: PoemRequest's fields, types and defaults (built, never retyped).
PoemsBody = _build_poems_body()


def to_request(body: BaseModel, **server: Any) -> PoemRequest:
    """The :class:`PoemRequest` a validated body asks for.

    Args:
        body: a :data:`PoemsBody`.
        server: values of :data:`SERVER_FIELDS` or others the server settles (a drawn seed).
    """
    return PoemRequest(**{**body.model_dump(), **server})


class CheckBody(BaseModel):
    """The body of ``POST /v1/check``: one poem and how to judge it, as ``tangrnn check`` takes them."""

    model_config = _STRICT_BODY

    poem: str = Field(description="The poem: 4 or 8 lines of 5 or 7 characters, simplified or traditional.")
    tones: Literal["strict", "loose"] = Field(
        "strict", description="strict: every position the pattern fixes; loose: 2, 4, 6 and the line ends."
    )
    strict: bool = Field(False, description="Warnings (孤平, 三平尾, 邻韵) fail the poem too.")
    pattern: str = Field("auto", description="Check against this pattern only (仄起首句不入韵 ...); auto: the best.")
