"""JSON Schemas per message and an AsyncAPI 3.0 document of channels and messages."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arcflare.contracts.base import SCHEMA, message_types
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.topology import TOPOLOGY


def message_schemas() -> dict[str, dict[str, Any]]:
    """Standalone JSON Schemas (draft 2020-12), one per message type."""
    return {name: {"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "$id": f"urn:arcflare:{SCHEMA}:{name}", **cls.model_json_schema()}
            for name, cls in sorted(message_types().items())}


def asyncapi_document() -> dict[str, Any]:
    types = message_types()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, cls in sorted(types.items()):
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (cls.__doc__ or "").strip().split("\n")[0] or f"{cls.category} {name}",
            "contentType": "application/json",
            "correlationId": {"location": "$message.header#/correlation_id"},
            "headers": {"$ref": "#/components/schemas/EnvelopeHeaders"},
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "x-arcflare-kind": cls.category,
        }
    schemas["EnvelopeHeaders"] = _envelope_headers()
    entities = [(q.name, "queue", q.options) for q in TOPOLOGY.queues]
    entities += [(t.name, "topic", t.options) for t in TOPOLOGY.topics]
    for entity, kind, options in entities:
        members = [n for n, c in sorted(types.items()) if c.channel == entity]
        channels[entity] = {
            "address": entity,
            "title": f"{kind} {entity}",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in members},
            "x-servicebus": {
                "kind": kind,
                "requiresSession": options.requires_session,
                "lockDurationSeconds": options.lock_duration.total_seconds(),
                "maxDeliveryCount": options.max_delivery_count,
                "defaultTtlSeconds": options.default_ttl.total_seconds(),
                "duplicateDetectionWindowSeconds":
                    options.duplicate_detection_window.total_seconds(),
            },
        }
        if kind == "topic":
            topic = TOPOLOGY.topic(entity)
            channels[entity]["x-servicebus"]["subscriptions"] = {
                s.name: [r.subject or r.properties for r in s.rules] or ["*"]
                for s in topic.subscriptions
            }
        if members:
            action = "receive" if kind == "queue" else "send"
            operations[f"{action}-{entity}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{entity}"},
                "messages": [{"$ref": f"#/channels/{entity}/messages/{n}"} for n in members],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ArcFlare control plane",
            "version": SCHEMA,
            "description": "Commands (queues, session = federation) and events (topics) of "
                           "ArcFlare, carried by Azure Service Bus or the embedded broker.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "{namespace}.servicebus.windows.net", "protocol": "amqps",
                           "variables": {"namespace": {"description": "Service Bus namespace"}}},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _envelope_headers() -> dict[str, Any]:
    schema = Envelope.model_json_schema(by_alias=True)
    schema["properties"].pop("payload", None)
    schema["required"] = [r for r in schema.get("required", []) if r != "payload"]
    schema["title"] = "EnvelopeHeaders"
    return schema


def export(directory: Path) -> list[Path]:
    """Write one JSON Schema per message and asyncapi.json; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in message_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_text(json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
