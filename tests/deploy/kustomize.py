"""A small, strict, pure-Python kustomize: enough to render deploy/kubernetes/ offline in the tests.

It implements exactly the kustomization fields our manifests use, the way kustomize v5 does, and refuses
anything else (so a manifest change that needs more cannot be silently rendered wrong):

- ``resources`` (YAML files, or directories holding a kustomization), ``components`` (``kind: Component``)
- ``configMapGenerator`` with ``files``/``literals`` and ``behavior`` create, merge or replace; generated
  ConfigMaps get kustomize's content-hash suffix and every reference to them in a pod spec is renamed
- ``patches`` holding JSON 6902 operations (add, replace, remove) with a ``target`` kind and name
- ``images`` (newName, newTag, digest), ``replicas``

Order, as kustomize's: resources, then components, then this level's generators, then its transformers
(patches, replicas, images); name suffixes and references are settled once, on the whole output.
``test_kustomize_matches_kubectl`` compares this with ``kubectl kustomize`` wherever kubectl is installed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "configMapGenerator",
    "patches",
    "images",
    "replicas",
}
_GENERATOR_KEYS = {"name", "files", "literals", "behavior"}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    """A kustomization this renderer cannot render faithfully, or one kustomize itself would refuse."""


@dataclass
class Resource:
    data: dict[str, Any]
    generated: bool = False  # a configMapGenerator's output: gets the hash suffix at the end

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    @property
    def name(self) -> str:
        return str(self.data["metadata"]["name"])


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def build(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization directory: the list of resources ``kubectl kustomize DIR`` would print."""
    resources = _accumulate(Path(directory), [], expect_kind="Kustomization")
    return _finish(resources)


def _load(directory: Path) -> dict[str, Any]:
    path = kustomization_file(directory)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - _KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    return data


def _accumulate(directory: Path, resources: list[Resource], *, expect_kind: str) -> list[Resource]:
    spec = _load(directory)
    kind = spec.get("kind", "Kustomization")
    if kind != expect_kind:
        raise KustomizeError(f"{directory}: expected a {expect_kind}, found {kind}")
    if kind == "Component" and spec.get("apiVersion") != "kustomize.config.k8s.io/v1alpha1":
        raise KustomizeError(f"{directory}: a Component is kustomize.config.k8s.io/v1alpha1")
    # a Kustomization's resources are rendered on their own; a Component works on its includer's
    accumulated = resources if kind == "Component" else []
    if kind == "Kustomization" and resources:
        raise KustomizeError("a Kustomization starts from nothing")
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            accumulated.extend(_accumulate(path, [], expect_kind="Kustomization"))
        else:
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if doc:
                    accumulated.append(Resource(doc))
        _check_unique(accumulated, directory)
    for entry in spec.get("components", []):
        accumulated = _accumulate((directory / entry).resolve(), accumulated, expect_kind="Component")
    for generator in spec.get("configMapGenerator", []):
        _generate_config_map(directory, generator, accumulated)
    for patch in spec.get("patches", []):
        _apply_patch(directory, patch, accumulated)
    for replica in spec.get("replicas", []):
        _set_replicas(replica, accumulated)
    for image in spec.get("images", []):
        _set_image(image, accumulated)
    return accumulated


def _check_unique(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for res in resources:
        key = (res.kind, res.name)
        if key in seen:
            raise KustomizeError(f"{directory}: {res.kind} {res.name} is defined twice")
        seen.add(key)


# -- configMapGenerator --------------------------------------------------------------------------------


def _generate_config_map(directory: Path, generator: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(generator) - _GENERATOR_KEYS
    if unknown:
        raise KustomizeError(f"configMapGenerator {generator.get('name')}: unsupported {sorted(unknown)}")
    name = generator["name"]
    data: dict[str, str] = {}
    for literal in generator.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"configMapGenerator {name}: literal {literal!r} is not KEY=VALUE")
        data[key] = value
    for entry in generator.get("files", []):
        key, sep, rel = entry.partition("=")
        rel = rel if sep else key
        key = key if sep else Path(rel).name
        path = (directory / rel).resolve()
        if not path.is_relative_to(directory.resolve()):
            raise KustomizeError(f"{entry}: kustomize loads files only from inside the kustomization root")
        data[key] = path.read_text(encoding="utf-8")
    behavior = generator.get("behavior", "create")
    existing = [r for r in resources if r.kind == "ConfigMap" and r.name == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"configMapGenerator {name}: already exists (use behavior merge/replace)")
        resources.append(
            Resource(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}, True
            )
        )
        return
    if behavior not in ("merge", "replace"):
        raise KustomizeError(f"configMapGenerator {name}: unknown behavior {behavior!r}")
    if not existing:
        raise KustomizeError(f"configMapGenerator {name}: behavior {behavior} but no such ConfigMap")
    target = existing[0]
    if behavior == "merge":
        target.data["data"] = {**target.data.get("data", {}), **data}
    else:
        target.data["data"] = data


def config_map_hash(config_map: dict[str, Any]) -> str:
    """kustomize's name suffix: sha256 of Go's JSON of {data, kind, name}, ten hex digits, some remapped.

    kustomize (v5, kyaml) looks the name up with a path its lookup does not resolve, so the name it hashes
    is always "": a generated ConfigMap's suffix depends on its data only (checked against kubectl 1.27 to
    1.33, and against kustomize's own test vectors in test_kubernetes.py)."""
    encoded = {"data": config_map.get("data", {}), "kind": "ConfigMap", "name": ""}
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoding/json escapes these, and the hash is taken over its output
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _finish(resources: list[Resource]) -> list[dict[str, Any]]:
    renames: dict[str, str] = {}
    for res in resources:
        if res.generated:
            renames[res.name] = f"{res.name}-{config_map_hash(res.data)}"
            res.data["metadata"]["name"] = renames[res.name]
    for res in resources:
        spec = pod_spec(res.data)
        if spec is not None:
            _rename_config_map_refs(spec, renames)
    return [res.data for res in resources]


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload (its template's), or None for anything else."""
    if resource.get("kind") in _WORKLOADS:
        return resource["spec"]["template"]["spec"]
    if resource.get("kind") == "Pod":
        return resource["spec"]
    return None


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _rename_config_map_refs(spec: dict[str, Any], renames: dict[str, str]) -> None:
    def rename(holder: dict[str, Any] | None) -> None:
        if holder is not None and holder.get("name") in renames:
            holder["name"] = renames[holder["name"]]

    for volume in spec.get("volumes", []):
        rename(volume.get("configMap"))
        for source in volume.get("projected", {}).get("sources", []):
            rename(source.get("configMap"))
    for container in containers(spec):
        for env_from in container.get("envFrom", []):
            rename(env_from.get("configMapRef"))
        for env in container.get("env", []):
            rename(env.get("valueFrom", {}).get("configMapKeyRef"))


# -- transformers -----------------------------------------------------------------------------------------


def _targets(target: dict[str, Any], resources: list[Resource]) -> list[Resource]:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise KustomizeError(f"patch target: unsupported selectors {sorted(unknown)}")
    found = [
        r for r in resources if r.kind == target.get("kind", r.kind) and r.name == target.get("name", r.name)
    ]
    if not found:
        raise KustomizeError(f"patch target {target} matches nothing")
    return found


def _apply_patch(directory: Path, patch: dict[str, Any], resources: list[Resource]) -> None:
    if set(patch) - {"target", "patch", "path"}:
        raise KustomizeError(f"patch: unsupported fields {sorted(set(patch) - {'target', 'patch', 'path'})}")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text(encoding="utf-8")
    operations = yaml.safe_load(text)
    if not isinstance(operations, list) or "target" not in patch:
        raise KustomizeError("only JSON 6902 patches (a list of operations, with a target) are implemented")
    for res in _targets(patch["target"], resources):
        for operation in operations:
            json_patch(res.data, operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def json_patch(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """One RFC 6902 add / replace / remove, in place."""
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = document
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError):
            raise KustomizeError(f"{operation['path']}: no such location") from None
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            if index > len(parent):
                raise KustomizeError(f"{operation['path']}: index out of range")
            parent.insert(index, value)
        elif op in ("replace", "remove"):
            if index >= len(parent):
                raise KustomizeError(f"{operation['path']}: index out of range")
            if op == "replace":
                parent[index] = value
            else:
                del parent[index]
        else:
            raise KustomizeError(f"JSON patch op {op!r} is not implemented")
        return
    if op == "add":
        parent[last] = value
    elif op in ("replace", "remove"):
        if last not in parent:
            raise KustomizeError(f"{operation['path']}: no such location")
        if op == "replace":
            parent[last] = value
        else:
            del parent[last]
    else:
        raise KustomizeError(f"JSON patch op {op!r} is not implemented")


def _set_replicas(replica: dict[str, Any], resources: list[Resource]) -> None:
    matched = [
        r for r in resources if r.kind in _WORKLOADS - {"DaemonSet", "Job"} and r.name == replica["name"]
    ]
    if not matched:
        raise KustomizeError(f"replicas: no workload named {replica['name']}")
    for res in matched:
        res.data["spec"]["replicas"] = int(replica["count"])


def image_name(image: str) -> str:
    """``registry:5000/team/horde:0.1.0@sha256:...`` → ``registry:5000/team/horde``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _set_image(image: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images: unsupported {sorted(unknown)}")
    for res in resources:
        spec = pod_spec(res.data)
        if spec is None:
            continue
        for container in containers(spec):
            current = container["image"]
            if image_name(current) != image["name"]:
                continue
            rest = current[len(image["name"]) :]
            name = image.get("newName", image["name"])
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                container["image"] = name + rest
