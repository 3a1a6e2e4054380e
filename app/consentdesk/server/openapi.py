"""OpenAPI schemas for the routes, made from the domain's dataclasses."""

from __future__ import annotations

from typing import Any

from consentdesk.server import wire
from consentdesk.server.problems import PROBLEM_JSON

JSON = "application/json"

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status"],
}


class Schemas:
    """Component schemas, collected as routes refer to them."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, cls: type[Any]) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.components:
            schema, defs = wire.json_schema(cls)
            self.components.update(defs)
            self.components[name] = schema
        return {"$ref": wire.REF.format(model=name)}

    def body(self, cls: type[Any]) -> dict[str, Any]:
        return self.body_schema(self.ref(cls))

    @staticmethod
    def body_schema(schema: dict[str, Any]) -> dict[str, Any]:
        return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}

    def answer(
        self, description: str, schema: dict[str, Any], *statuses: int
    ) -> dict[int | str, Any]:
        out: dict[int | str, Any] = {
            s: {"description": description, "content": {JSON: {"schema": schema}}} for s in statuses
        }
        problem = {"$ref": wire.REF.format(model="Problem")}
        out["default"] = {
            "description": "An error (RFC 9457 problem details)",
            "content": {PROBLEM_JSON: {"schema": problem}},
        }
        return out

    def many(self, cls: type[Any]) -> dict[str, Any]:
        return {"type": "array", "items": self.ref(cls)}

    def page(self, cls: type[Any], **extra: dict[str, Any]) -> dict[str, Any]:
        """One page of *cls* rows with a ``next`` cursor (and *extra* properties)."""
        return {
            "type": "object",
            "properties": {
                "rows": self.many(cls),
                **extra,
                "next": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["rows", *extra, "next"],
        }


def obj(**properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object schema whose properties are all required."""
    return {"type": "object", "properties": properties, "required": list(properties)}


STRING: dict[str, Any] = {"type": "string"}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}

schemas = Schemas()
"""The one collection every route module adds to; the app publishes it."""
