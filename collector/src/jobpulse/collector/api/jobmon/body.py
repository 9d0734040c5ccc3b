"""JobMon's request bodies read the way its Go backend reads them (``encoding/json``).

JobMon's clients were written against a Go server, and send what Go accepts: the Slurm script sends
camelCase keys (``userName``, ``nodeList``) plus keys the server does not know (``projectId``), as
``application/x-www-form-urlencoded`` (``curl --data``); the web front end sends lower-case keys
(``{"username", "password", "frontendOnly"}``) as ``text/plain;charset=UTF-8``. So, as Go does:

- a JSON object's key names the struct field of exactly that name, else the field whose name matches it
  case-insensitively (the first such field, in declaration order);
- unknown keys are ignored, unless the struct itself forbids them (``forbid_unknown_fields=True``: bodies
  that are jobpulse's own, such as ``POST /api/generateAPIKey``'s, where a typo must not go unnoticed);
- ``null`` for a field that cannot hold it leaves the field as it is (its default; a required field is
  then missing);
- the body is JSON whatever the Content-Type says;
- a duplicate key: the last one wins.

Types are checked strictly, as Go does (``"4242"`` is not the number 4242, ``1`` is not ``true``), with
msgspec and each struct's constraints; a wrong type, a value out of range or a missing required field is
a 400 naming the field (``Id: Expected `int`, got `str```).

:class:`GoJSONBody` plugs this into Litestar as the ``dto`` of the JobMon dialect's router, so every body
route of the dialect (``data: JSONBody[T]``) decodes this way while the OpenAPI document still describes
``T`` itself. :func:`decode_body` is the decoder alone. The size, UTF-8 and nesting checks stay in front,
in ``httpconf.InputGuard``, which applies them to these bodies whatever their Content-Type.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import msgspec
import msgspec.inspect as mi
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.exceptions import ValidationException
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.dto._backend import DTOBackend

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]*)`")


def _fold(name: str) -> str:
    """Go's case-insensitive key match (``strings.EqualFold``, close enough: ``casefold`` also folds
    the Kelvin sign and the long s as Go does)."""
    return name.casefold()


class _StructKeys:
    """How one struct's keys are matched: exact encoded names first, then case-folded ones."""

    __slots__ = ("exact", "folded", "forbid")

    def __init__(self, info: mi.StructType) -> None:
        self.exact: dict[str, mi.Field] = {f.encode_name: f for f in info.fields}
        self.folded: dict[str, mi.Field] = {}
        for f in info.fields:
            self.folded.setdefault(_fold(f.encode_name), f)
        self.forbid = info.forbid_unknown_fields


_KEYS: dict[type[Any], _StructKeys] = {}


def _keys(info: mi.StructType) -> _StructKeys:
    keys = _KEYS.get(info.cls)
    if keys is None:
        keys = _KEYS[info.cls] = _StructKeys(info)
    return keys


@functools.cache
def _type_info(annotation: Any) -> mi.Type:
    return mi.type_info(annotation)


def _accepts_none(info: mi.Type) -> bool:
    if isinstance(info, mi.NoneType | mi.AnyType):
        return True
    return isinstance(info, mi.UnionType) and any(_accepts_none(t) for t in info.types)


def _fold_value(value: Any, info: mi.Type) -> Any:
    """``value`` (decoded JSON) with every object's keys renamed to the field names of ``info``."""
    if isinstance(info, mi.StructType):
        return _fold_object(value, info) if isinstance(value, dict) else value
    if isinstance(info, mi.UnionType):
        # msgspec allows at most one object-like and one array-like type in a union
        shapes: tuple[type[mi.Type], ...]
        if isinstance(value, dict):
            shapes = (mi.StructType, mi.DictType)
        elif isinstance(value, list):
            shapes = (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)
        else:
            return value
        kinds: list[mi.Type] = [t for t in info.types if isinstance(t, shapes)]
        return _fold_value(value, kinds[0]) if len(kinds) == 1 else value
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return [_fold_value(v, info.item_type) for v in value] if isinstance(value, list) else value
    if isinstance(info, mi.DictType) and isinstance(value, dict):
        return {k: _fold_value(v, info.value_type) for k, v in value.items()}
    return value


def _fold_object(obj: dict[str, Any], info: mi.StructType) -> dict[str, Any]:
    keys = _keys(info)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = keys.exact.get(key) or keys.folded.get(_fold(key))
        if field is None:
            if keys.forbid:
                out[key] = value  # msgspec refuses it, naming the key
            continue
        if value is None and not _accepts_none(field.type):
            continue  # Go: null leaves the field as it is
        out[field.encode_name] = _fold_value(value, field.type)
    return out


def _refusal(exc: msgspec.ValidationError) -> ValidationException:
    """msgspec's error as a 400 naming the field (``Nodes[0].Name``), or ``body`` for the whole."""
    message = str(exc)
    path, reason = "", message
    if match := _AT.search(message):
        path, reason = match["path"].lstrip("."), message[: match.start()]
    if named := _FIELD.search(reason):
        path = f"{path}.{named['name']}" if path else named["name"]
    field = path or "body"
    reason = reason.replace("`", "")
    return ValidationException(
        detail=f"{field}: {reason}", extra=[{"key": field, "message": reason, "source": "body"}]
    )


def decode_body(body: bytes, annotation: Any) -> Any:
    """``body`` (JSON) as ``annotation``, read as Go's ``encoding/json`` reads it (see the module)."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:  # InputGuard bounds depth; this is the backstop
        reason = str(exc) if isinstance(exc, msgspec.DecodeError) else "nested too deeply"
        raise ValidationException(
            detail=f"body: not JSON ({reason})", extra=[{"key": "body", "message": reason, "source": "body"}]
        ) from None
    try:
        return msgspec.convert(_fold_value(raw, _type_info(annotation)), annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise _refusal(exc) from None


class GoJSONBody(AbstractDTO[Any]):
    """The request-body "DTO" of the JobMon dialect: :func:`decode_body` for the handler's ``data``.

    It builds no transfer model: the handler gets its own struct, the OpenAPI document describes that
    struct as it would without a DTO, and answers are encoded as usual (it never serves as a return DTO).
    """

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def is_supported_model_type_field(cls, field_definition: FieldDefinition) -> bool:
        return False  # so Litestar never uses it to encode an answer

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: type[DTOBackend] | None = None
    ) -> None:
        _type_info(field_definition.annotation)  # a struct msgspec cannot describe fails at start

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        schema: Reference | Schema = schema_creator.for_field_definition(field_definition)
        return schema

    def decode_bytes(self, value: bytes) -> Any:
        field = self.asgi_connection.route_handler.parsed_data_field
        return decode_body(value, field.annotation if field is not None else Any)

    def decode_builtins(self, value: dict[str, Any]) -> Any:
        return self.decode_bytes(msgspec.json.encode(value))


__all__ = ["GoJSONBody", "decode_body"]
