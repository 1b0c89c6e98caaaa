"""The structure check: what a model would load, against what a checkpoint's manifest holds.

For PaddleFormers models the rules are those ``PretrainedModel.from_pretrained`` applies (paddleformers
0.4.1): the expected keys are the model's ``state_dict`` keys; Hugging Face layout (``format: pt``)
transposes 2-d weights named by ``transpose_weight_keys``; VLM classes rename checkpoint keys with
``_checkpoint_conversion_mapping``; the base-model prefix is added or removed when only one side has
it; keys matching ``_keys_to_ignore_on_load_missing/unexpected`` are not reported. Unlike
``from_pretrained``, a tied weight (one parameter under two names) counts as loaded when any of its
names is in the checkpoint, and a dtype of another kind (float, integer, float8) is a mismatch even
where ``from_pretrained`` would cast it silently.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_dummyweights._checkpoints.manifest import Manifest
from pytest_dummyweights._runtime import dtypes

SHOWN = 20  # entries of each kind a table shows


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """What the model takes for one checkpoint key: the shape as stored in the checkpoint, the dtype kind."""

    shape: tuple[int, ...]
    kind: str  # float, float8, integer, bool
    aliases: tuple[str, ...] = ()  # other names of the same parameter (tied weights)


@dataclasses.dataclass
class Layout:
    """The keys a model loads, and the loader's rules for naming them."""

    tensors: dict[str, TensorSpec]
    prefix: str = ""  # base_model_prefix
    ignore_missing: tuple[str, ...] = ()  # regular expressions
    ignore_unexpected: tuple[str, ...] = ()
    key_mapping: tuple[tuple[str, str], ...] = ()  # (pattern, replacement) applied to checkpoint keys, first match wins


@dataclasses.dataclass(frozen=True)
class Mismatch:
    name: str
    checkpoint: str  # e.g. "[32, 64]" or "integer (I32)"
    model: str


@dataclasses.dataclass(frozen=True)
class LoaderError:
    """An exception raised by a model's ``load_weights`` while it was given ``checkpoint_name``."""

    checkpoint_name: str
    message: str


@dataclasses.dataclass
class CheckReport:
    """What disagrees between a model and a checkpoint; ``ok`` when nothing does."""

    source: str
    missing: list[str] = dataclasses.field(default_factory=list)  # the model needs it, the checkpoint lacks it
    unexpected: list[str] = dataclasses.field(default_factory=list)  # the checkpoint has it, nothing loads it
    shape_mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    dtype_mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    index_problems: list[str] = dataclasses.field(default_factory=list)
    loader_errors: list[LoaderError] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing or self.unexpected or self.shape_mismatches or self.dtype_mismatches or self.index_problems or self.loader_errors
        )

    def named_keys(self) -> set[str]:
        """Every tensor name the report points at (for comparing with what a loader warned about)."""
        return {*self.missing, *self.unexpected, *(m.name for m in self.shape_mismatches), *(m.name for m in self.dtype_mismatches)}

    def table(self) -> list[str]:
        """Readable lines: a header, then the first ``SHOWN`` entries of each kind with its count."""
        if self.ok:
            return [f"checkpoint {self.source}: the model and the checkpoint agree"]
        sections = [
            ("missing (the model needs it, the checkpoint lacks it)", self.missing),
            ("unexpected (the checkpoint has it, nothing loads it)", self.unexpected),
            ("shape mismatch (checkpoint vs. model)", [f"{m.name}: {m.checkpoint} vs. {m.model}" for m in self.shape_mismatches]),
            ("dtype-kind mismatch (checkpoint vs. model)", [f"{m.name}: {m.checkpoint} vs. {m.model}" for m in self.dtype_mismatches]),
            ("stale index", self.index_problems),
            ("load_weights raised", [f"{e.checkpoint_name}: {e.message}" for e in self.loader_errors]),
        ]
        lines = [f"checkpoint {self.source}: the model and the checkpoint disagree"]
        for title, entries in sections:
            if entries:
                lines.append(f"  {title}: {len(entries)}")
                lines += [f"    {entry}" for entry in entries[:SHOWN]]
                if len(entries) > SHOWN:
                    lines.append(f"    ... and {len(entries) - SHOWN} more")
        return lines


def is_vlm_class(cls: type) -> bool:
    """``from_pretrained`` applies ``_checkpoint_conversion_mapping`` only to these classes."""
    model_utils = sys.modules.get("paddleformers.transformers.model_utils")  # loaded whenever the model is PaddleFormers'
    vlms = getattr(model_utils, "VLMS", ())
    return any(vlm in klass.__name__.lower() for klass in cls.__mro__[:-1] for vlm in vlms)


def needs_transpose(name: str, transpose_keys: Iterable[str]) -> bool:
    """``from_pretrained``'s test for a Hugging Face weight it transposes (2-d only, never LoRA)."""
    return "lora" not in name and any(
        re.search(rf"\.{key}\.weight$", name) or re.fullmatch(rf"{key}\.weight", name) for key in transpose_keys
    )


def expected_layout(model: Any, layout: str = "paddle") -> Layout:
    """What a PaddleFormers ``model`` loads from a checkpoint in ``layout`` (``"paddle"`` or ``"hf"``)."""
    cls = type(model)
    state = model.state_dict()
    names_by_tensor: dict[int, list[str]] = {}
    for name, tensor in state.items():
        names_by_tensor.setdefault(id(tensor), []).append(name)
    transpose_keys = getattr(cls, "transpose_weight_keys", None) if layout == "hf" else None
    tensors = {}
    for name, tensor in state.items():
        shape = tuple(int(size) for size in tensor.shape)
        if isinstance(transpose_keys, list) and len(shape) == 2 and needs_transpose(name, transpose_keys):
            shape = shape[::-1]
        aliases = tuple(other for other in names_by_tensor[id(tensor)] if other != name)
        tensors[name] = TensorSpec(shape, dtypes.kind(tensor.dtype), aliases)
    mapping = (getattr(cls, "_checkpoint_conversion_mapping", None) or {}) if is_vlm_class(cls) else {}
    return Layout(
        tensors,
        prefix=getattr(cls, "base_model_prefix", "") or "",
        ignore_missing=tuple(getattr(cls, "_keys_to_ignore_on_load_missing", None) or ()),
        ignore_unexpected=tuple(getattr(cls, "_keys_to_ignore_on_load_unexpected", None) or ()),
        key_mapping=tuple(mapping.items()),
    )


def rename_checkpoint_key(name: str, key_mapping: Iterable[tuple[str, str]]) -> str:
    for pattern, replacement in key_mapping:
        renamed, count = re.subn(pattern, replacement, name)
        if count:
            return renamed
    return name


def align_prefix(expected: Mapping[str, TensorSpec], loaded: Iterable[str], prefix: str) -> dict[str, TensorSpec]:
    """Rename the model's keys as ``from_pretrained`` does when only one side carries the base-model prefix."""
    if not prefix:
        return dict(expected)
    loaded_has = any(name.startswith(prefix) for name in loaded)
    model_has = any(name.startswith(prefix) for name in expected)
    if model_has and not loaded_has:
        strip = f"{prefix}."

        def rename(name: str) -> str:
            return name[len(strip) :] if name.startswith(strip) else name
    elif loaded_has and not model_has:

        def rename(name: str) -> str:
            return f"{prefix}.{name}"
    else:
        return dict(expected)
    return {
        rename(name): dataclasses.replace(spec, aliases=tuple(rename(alias) for alias in spec.aliases)) for name, spec in expected.items()
    }


def same_shape(checkpoint: tuple[int, ...], model: tuple[int, ...]) -> bool:
    """Equal, or both 0-d/[1] (``from_pretrained`` reshapes one into the other)."""
    return checkpoint == model or (checkpoint in ((), (1,)) and model in ((), (1,)))


def compare(layout: Layout, manifest: Manifest) -> CheckReport:
    """Missing, unexpected, shape and dtype-kind mismatches, and a stale index; each list sorted."""
    expected = align_prefix(layout.tensors, manifest.tensors, layout.prefix)  # on the names as stored, before any mapping
    loaded = {rename_checkpoint_key(name, layout.key_mapping): entry for name, entry in manifest.tensors.items()}
    report = CheckReport(manifest.source, index_problems=list(manifest.index_problems))
    for name, spec in sorted(expected.items()):
        if name not in loaded:
            tied_present = any(alias in loaded for alias in spec.aliases)
            if not tied_present and not any(re.search(pattern, name) for pattern in layout.ignore_missing):
                report.missing.append(name)
            continue
        entry = loaded[name]
        if not same_shape(entry.shape, spec.shape):
            report.shape_mismatches.append(Mismatch(name, str(list(entry.shape)), str(list(spec.shape))))
        if dtypes.kind(entry.dtype) != spec.kind:
            report.dtype_mismatches.append(Mismatch(name, f"{dtypes.kind(entry.dtype)} ({entry.dtype})", spec.kind))
    report.unexpected = sorted(
        name for name in loaded if name not in expected and not any(re.search(pattern, name) for pattern in layout.ignore_unexpected)
    )
    return report


def check_model(model: Any, manifest: Manifest) -> CheckReport:
    """The structure check of a PaddleFormers model, in the layout the checkpoint's files declare."""
    return compare(expected_layout(model, manifest.layout), manifest)
