"""Shrink a real config's depth and expert count while keeping every kind of layer it declares.

Works on the raw config dict, before the config class is built: PaddleFormers configs derive
per-layer lists (``layer_types``) from ``num_hidden_layers`` at construction. Hidden sizes, head
dims, intermediate sizes and the vocabulary stay real unless asked, so kernels see real shapes and
real token ids stay valid. A config with structure keys this module does not understand is left
unchanged and those keys are returned, so a wrong shrink never passes silently.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Mapping
from typing import Any

from pytest_dummyweights._building.layer_kinds import EXPERT_COUNT_KEYS, expert_key, layer_kinds, sliding_by_depth
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import parse_shrink

TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")
# keys whose meaning for the layer structure is understood: shrunk here, or kept on purpose (widths)
KNOWN_KEYS = {
    "num_hidden_layers",
    "first_k_dense_replace",
    "moe_layer_freq",
    "decoder_sparse_step",
    "mlp_only_layers",
    "layer_types",
    "max_window_layers",
    "num_nextn_predict_layers",
    "num_nextn_predict_lambda",
    "num_experts_per_tok",
    "n_group",
    "topk_group",
    "ep_size",
    "n_shared_experts",
    "num_shared_experts",
    "shared_expert_intermediate_size",
    *EXPERT_COUNT_KEYS,
}


@dataclasses.dataclass(frozen=True)
class Change:
    key: str
    before: Any
    after: Any


@dataclasses.dataclass
class ShrinkResult:
    """A shrunk config, and what the shrink changed (``describe_changes`` says it in lines)."""

    raw: dict[str, Any]  # the config to build from
    changes: list[Change]
    unknown_keys: list[str]  # structure keys not understood: when any, ``raw`` is the input unchanged
    layer_kinds: list[str]  # the kind of each layer of the result, e.g. "dense/full_attention"


# --- depth ---------------------------------------------------------------------------------------


def _runs(values: list) -> list:
    """One entry per run of equal neighbours: [a, a, b, b, a] -> [a, b, a]."""
    return [value for value, _ in itertools.groupby(values)]


def depth_updates(raw: Mapping[str, Any], layers: int, compact: bool) -> dict[str, Any]:
    """The keys that make a ``layers``-deep config: the real first layers (``compact=False``), or with
    prefixes (dense layers, full-attention layers) cut to one and repeated runs of a kind cut to one."""
    original = raw["num_hidden_layers"]
    updates: dict[str, Any] = {"num_hidden_layers": layers}
    if compact and isinstance(raw.get("first_k_dense_replace"), int):
        updates["first_k_dense_replace"] = min(raw["first_k_dense_replace"], 1)
    if raw.get("mlp_only_layers"):
        kept = [i for i in raw["mlp_only_layers"] if i < layers]
        updates["mlp_only_layers"] = kept or ([0] if compact else [])
    if isinstance(raw.get("layer_types"), list):
        types = _runs(raw["layer_types"]) if compact else raw["layer_types"]
        updates["layer_types"] = (types + types[-1:] * layers)[:layers]
    if isinstance(raw.get("max_window_layers"), int):
        if raw["max_window_layers"] >= original:  # "every layer": keep that meaning
            updates["max_window_layers"] = layers
        elif compact and sliding_by_depth(raw):
            updates["max_window_layers"] = min(raw["max_window_layers"], 1)
    return updates


def plan_depth(raw: Mapping[str, Any], requested: int | None) -> dict[str, Any]:
    """The fewest layers (at least two, to exercise layer-to-layer code) that keep every layer kind."""
    original = raw["num_hidden_layers"]
    needed = set(layer_kinds(raw))

    def covers(layers: int, compact: bool) -> bool:
        return set(layer_kinds({**raw, **depth_updates(raw, layers, compact)})) >= needed

    fewest = next(n for n in range(1, original + 1) if covers(n, False) or covers(n, True))
    layers = requested if requested is not None else max(fewest, min(2, original))
    kinds = ", ".join(sorted(needed))
    if layers > original:
        raise DummyWeightsError(
            f"shrink layers={layers} is more than the config's num_hidden_layers={original}; ask for at most {original}"
        )
    if layers < fewest:
        raise DummyWeightsError(
            f"shrink layers={layers} cannot keep the config's {len(needed)} layer kind(s) ({kinds}); ask for at least {fewest}"
        )
    for compact in (False, True):  # the real first layers when they keep every kind
        if covers(layers, compact):
            return depth_updates(raw, layers, compact)
    raise DummyWeightsError(f"shrink layers={layers} cannot keep every layer kind ({kinds}) of this config; ask for {fewest}")


# --- experts and vocabulary ------------------------------------------------------------------------


def routing_problem(raw: Mapping[str, Any], experts: int) -> str | None:
    """Why ``experts`` routed experts would break this config's routing, or None."""
    top_k = raw.get("num_experts_per_tok") or 1
    groups = raw.get("n_group") or 1
    chosen_groups = raw.get("topk_group") or groups
    ep_size = raw.get("ep_size") or 1
    # noaux_tc scores a group by its best two experts (PaddleFormers moe_gate, Glm4MoE)
    per_group = 2 if raw.get("topk_method", "noaux_tc" if "n_group" in raw else None) == "noaux_tc" else 1
    if experts < top_k:
        return f"fewer than num_experts_per_tok={top_k}"
    if experts % groups or experts % ep_size:
        return f"not divisible by n_group={groups} and ep_size={ep_size}"
    if experts // groups < per_group:
        return f"fewer than {per_group} per group (n_group={groups}, topk_method noaux_tc)"
    if experts // groups * chosen_groups < top_k:
        return f"fewer than num_experts_per_tok={top_k} in the topk_group={chosen_groups} chosen groups"
    return None


def plan_experts(raw: Mapping[str, Any], requested: int | None) -> dict[str, Any]:
    """By default the fewest valid experts that are at least twice ``num_experts_per_tok``: routing must choose."""
    key = expert_key(raw)
    if key is None:
        if requested is not None:
            raise DummyWeightsError(
                f"shrink experts={requested}, but the config routes to no experts (none of {', '.join(EXPERT_COUNT_KEYS)}); drop experts"
            )
        return {}
    original = raw[key]
    if requested is None:
        floor = 2 * (raw.get("num_experts_per_tok") or 1)
        experts = next((n for n in range(floor, original) if routing_problem(raw, n) is None), original)
    else:
        experts = requested
        problem = routing_problem(raw, experts) if experts <= original else f"more than the config's {key}={original}"
        if problem:
            raise DummyWeightsError(f"shrink experts={experts} would break routing: {problem}; choose another expert count")
    return {key: experts}


def plan_vocab(raw: Mapping[str, Any], requested: int | None) -> dict[str, Any]:
    """Shrink the vocabulary only when asked; special token ids past its end move to its last ids, staying distinct.
    Asking for more than the config has, or a config without a vocabulary, is an error, as for layers and experts."""
    if requested is None:
        return {}
    original = raw.get("vocab_size")
    if isinstance(original, bool) or not isinstance(original, int):
        raise DummyWeightsError(f"shrink vocab={requested}, but the config has no integer vocab_size (found {original!r}); drop vocab")
    if requested > original:
        raise DummyWeightsError(f"shrink vocab={requested} is more than the config's vocab_size={original}; ask for at most {original}")
    ids = {key: raw[key] for key in TOKEN_ID_KEYS if isinstance(raw.get(key), (int, list))}
    outside = sorted(
        {i for value in ids.values() for i in (value if isinstance(value, list) else [value]) if isinstance(i, int) and i >= requested}
    )
    if len(outside) >= requested:
        raise DummyWeightsError(f"shrink vocab={requested} cannot hold the config's {len(outside)} special token ids; ask for more")
    moved = {old: requested - 1 - rank for rank, old in enumerate(outside)}
    updates: dict[str, Any] = {"vocab_size": requested}
    for key, value in ids.items():
        new = [moved.get(i, i) for i in value] if isinstance(value, list) else moved.get(value, value)
        if new != value:
            updates[key] = new
    return updates


# --- the whole shrink --------------------------------------------------------------------------------


def unknown_structure_keys(raw: Mapping[str, Any]) -> list[str]:
    """Keys that look like layer or expert structure (per-layer lists, layer/expert counts) not understood here."""
    layers = raw["num_hidden_layers"]
    found = []
    for key, value in raw.items():
        if key in KNOWN_KEYS or isinstance(value, bool):
            continue
        per_layer_list = isinstance(value, list) and len(value) == layers and key not in TOKEN_ID_KEYS
        structural_name = isinstance(value, (int, list)) and re.search(r"layer|expert", key) and "norm" not in key
        if per_layer_list or structural_name:
            found.append(key)
    return found


def shrink_config(original: Mapping[str, Any], request: bool | Mapping[str, Any] = True) -> ShrinkResult:
    """A smaller config with every layer kind of ``original``, valid expert routing and real widths."""
    parsed = parse_shrink(request)
    raw: dict[str, Any] = copy.deepcopy(dict(original))
    layers = raw.get("num_hidden_layers")
    if parsed is None:
        return ShrinkResult(raw, [], [], layer_kinds(raw) if isinstance(layers, int) else [])
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise DummyWeightsError(f"shrink needs an integer num_hidden_layers in the config; found {layers!r}: drop shrink and use overrides")
    if isinstance(raw.get("layer_types"), list) and len(raw["layer_types"]) != layers:
        raise DummyWeightsError(
            f"config layer_types has {len(raw['layer_types'])} entries for num_hidden_layers={layers}; fix the config before shrinking"
        )
    unknown = unknown_structure_keys(raw)
    if unknown:
        return ShrinkResult(raw, [], unknown, layer_kinds(raw))
    updates = {**plan_depth(raw, parsed.layers), **plan_experts(raw, parsed.experts), **plan_vocab(raw, parsed.vocab)}
    if isinstance(raw.get("num_nextn_predict_layers"), int) and raw["num_nextn_predict_layers"] > 1:
        updates["num_nextn_predict_layers"] = 1  # the MTP kind stays; its depth goes
    changes = [Change(key, raw.get(key), value) for key, value in updates.items() if raw.get(key) != value]
    raw.update(updates)
    return ShrinkResult(raw, changes, [], layer_kinds(raw))


def _short(value: Any) -> str:
    """Long per-layer lists as runs: ['full_attention']*28 + ['sliding_attention']*8."""
    if isinstance(value, list) and len(value) > 6:
        return " + ".join(f"[{item!r}]*{len(list(group))}" for item, group in itertools.groupby(value))
    return repr(value)


def describe_changes(result: ShrinkResult) -> list[str]:
    """Lines for the ``-v`` summary and the CLI."""
    if result.unknown_keys:
        return [f"shrink: config left unchanged: it has structure keys shrink does not know: {', '.join(result.unknown_keys)}"]
    lines = [f"shrink: {change.key} {_short(change.before)} -> {_short(change.after)}" for change in result.changes]
    counts = ", ".join(f"{kind} x{len(list(group))}" for kind, group in itertools.groupby(result.layer_kinds))
    if result.raw.get("num_nextn_predict_layers"):
        counts += f"; MTP kept: num_nextn_predict_layers={result.raw['num_nextn_predict_layers']}"
    return (lines or ["shrink: nothing to shrink"]) + [f"shrink: layers {counts}"]


def describe_inline(result: ShrinkResult) -> str:
    """The same on one line, for a model's entry in the run summary."""
    return "shrunk: " + "; ".join(line.removeprefix("shrink: ") for line in describe_changes(result))
