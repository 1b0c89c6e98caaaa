"""Nothing left unset: after post-processing, every parameter has storage and no loader-filled weight is ``None``.

A real load fills weights that a model's ``__init__`` only declares as ``None`` placeholders (MLA's
``k_b_proj_weight``/``v_b_proj_weight``, a quantized layer's ``weight_scale``); a dummy build loads
nothing, so post-processing must derive them. One it forgot stays ``None`` and fails much later, far
from its cause. Here it fails at setup, naming the sublayer and the attribute.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Collection

import paddle

from pytest_dummyweights._runtime.private_paddle import is_materialized, registered_slots
from pytest_dummyweights.errors import DummyWeightsError

PLACEHOLDER_SUFFIXES = ("_weight", "_scale", "_scale_inv")  # k_b_proj_weight, weight_scale, weight_scale_inv, k_scale


@dataclasses.dataclass(frozen=True)
class Unset:
    sublayer: str  # structured name; "" for the model itself
    class_name: str
    attribute: str

    @property
    def path(self) -> str:
        return f"{self.sublayer}.{self.attribute}" if self.sublayer else self.attribute


def is_placeholder_name(name: str) -> bool:
    return not name.startswith("__") and name.endswith(PLACEHOLDER_SUFFIXES)


def find_unset(model: paddle.nn.Layer) -> tuple[list[str], list[Unset]]:
    """(non-empty parameters without storage, ``None`` attributes with a loader-filled weight's name)."""
    # a zero-size parameter has no storage to give; it counts as set
    unmaterialized = [name for name, param in model.named_parameters() if math.prod(param.shape) and not is_materialized(param)]
    placeholders = []
    for path, layer in model.named_sublayers(include_self=True):
        names = [name for name, value in (*vars(layer).items(), *registered_slots(layer)) if value is None]
        placeholders += [Unset(path, type(layer).__name__, name) for name in dict.fromkeys(names) if is_placeholder_name(name)]
    return unmaterialized, placeholders


def _by_sublayer(unset: list[Unset]) -> str:
    """The unset attributes grouped by sublayer, one ``sublayer 'path' (Class): a, b`` part each."""
    by_layer: dict[tuple[str, str], list[str]] = {}
    for item in unset:
        by_layer.setdefault((item.sublayer, item.class_name), []).append(item.attribute)
    return "; ".join(
        f"{f'sublayer {path!r}' if path else 'the model'} ({class_name}): {', '.join(names)}"
        for (path, class_name), names in by_layer.items()
    )


def check_nothing_unset(model: paddle.nn.Layer, allow: Collection[str] = ()) -> None:
    """Raise one line naming each unmaterialized parameter and each ``None`` weight placeholder, unless ``allow``
    (fnmatch patterns on ``sublayer.attribute``, e.g. ``"layers.0.attn.k_scale"``, ``"*.bias_scale"``) lists it."""
    unmaterialized, placeholders = find_unset(model)
    unmaterialized = [name for name in unmaterialized if not any(fnmatch.fnmatchcase(name, pattern) for pattern in allow)]
    placeholders = [item for item in placeholders if not any(fnmatch.fnmatchcase(item.path, pattern) for pattern in allow)]
    if unmaterialized:
        raise DummyWeightsError(
            f"parameters without storage after post-processing: {', '.join(unmaterialized)}; a parameter created "
            "after the dummy fill must be given values (or allow it with allow_unset=[...])"
        )
    if placeholders:
        raise DummyWeightsError(
            f"weights left unset (None) after post-processing, which a checkpoint loader would fill: {_by_sublayer(placeholders)}; "
            "derive them in process_weights_after_loading or a pytest_dummyweights_post_process hook, "
            f"or, if the model leaves them None on purpose, allow_unset={[item.path for item in placeholders]!r}"
        )
