"""Renders the subset of kustomize our manifests use (no kustomize binary here):
resources, namespace, labels, images, components, strategic-merge patches (merging
named lists by name) and JSON 6902 patches (add / replace, '-' appends)."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml


def render(directory: Path) -> list[dict]:
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for res in k.get("resources", []):
        path = directory / res
        docs += render(path) if path.is_dir() else list(yaml.safe_load_all(path.read_text()))
    for comp in k.get("components", []):
        docs = _apply_patches(docs, directory / comp,
                              yaml.safe_load((directory / comp / "kustomization.yaml").read_text()))
    docs = _apply_patches(docs, directory, k)
    for doc in docs:
        if k.get("namespace"):
            doc["metadata"]["namespace"] = k["namespace"]
            for subject in doc.get("subjects", []):
                subject["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        for image in k.get("images", []):
            for c in _containers(doc):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def _containers(doc: dict) -> list[dict]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def _apply_patches(docs: list[dict], directory: Path, k: dict) -> list[dict]:
    for patch in k.get("patches", []):
        body = patch.get("patch") or (directory / patch["path"]).read_text()
        content = yaml.safe_load(body)
        if isinstance(content, list):  # JSON 6902
            target = patch["target"]
            doc = _find(docs, target["kind"], target["name"])
            for op in content:
                _json6902(doc, op)
        else:
            doc = _find(docs, content["kind"], content["metadata"]["name"])
            _merge(doc, content)
    return docs


def _find(docs: list[dict], kind: str, name: str) -> dict:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"a patch targets {kind}/{name}, which no resource defines")


def _merge(base: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif (isinstance(value, list) and isinstance(base.get(key), list)
              and all(isinstance(v, dict) and "name" in v for v in value)):
            by_name = {item.get("name"): item for item in base[key]}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    base[key].append(copy.deepcopy(item))
        else:
            base[key] = copy.deepcopy(value)


def _json6902(doc: dict, op: dict) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if op["op"] not in ("add", "replace"):
        raise ValueError(f"unsupported op {op['op']}")
    if isinstance(node, list):
        if last == "-":
            node.append(op["value"])
        else:
            index = int(last)
            if op["op"] == "replace":
                node[index] = op["value"]
            else:
                node.insert(index, op["value"])
    else:
        if op["op"] == "replace" and last not in node:
            raise KeyError(f"replace of a missing path {op['path']}")
        node[last] = op["value"]
