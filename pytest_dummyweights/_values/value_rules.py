"""Which constant values replace the fill's dummy values: the scale preset and exact per-name rules.

One definition for every storage mode and device. The fill (``fill.initialize_dummy_weights``) gives
every parameter the published rule: floating point normal, every other dtype zeros, float8 through
``copy_``. Rules are applied after it, as a separate step, and decide per parameter in this order,
the last match winning:

1. ``scales="default"``: no rule; scales keep the published rule (normal, or zeros for uint8).
   ``scales="neutral"``: every 0-d floating-point parameter (a calibration scalar), then every parameter
   whose structured name matches a scale pattern (``SCALE_PATTERNS``, plus those the model's
   quantization config implies) gets the neutral value of its dtype: 1.0 for floating point (float8 too),
   127 for uint8 (an exponent scale: 2^(127-127) = 1.0 in UE8M0), 1 for other integers.
2. ``value_rules={pattern: value}``, in the dict's order: every parameter whose name matches
   ``pattern`` (fnmatch, ``*`` crosses dots) gets ``value``: a number, or ``"neutral"`` (the dtype's
   neutral value above; this is how a name a project uses for its scales joins the preset).

Under ``real_weights`` no rule is applied, with a ``ValueRulesIgnoredWarning``: rules stand in for values a
checkpoint has, and a real-weights build has the checkpoint's own. A warning, not an error, because one
suite runs both ways (dummy weights in CI, ``--real-weights`` in the nightly run): an error would fail, in
the nightly run, every test that needs neutral scales to stay finite on dummy values; the warning keeps
it running and says why a value a test may assert on is now the checkpoint's.

The presets and the check of these arguments are the vocabulary's (``vocabulary.check_rule_arguments``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import paddle

from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights._runtime.private_paddle import copy_into
from pytest_dummyweights.errors import DummyWeightsError, ValueRulesIgnoredWarning
from pytest_dummyweights.vocabulary import NEUTRAL, check_rule_arguments

# weight_scale, weight_scale_inv, k_scale, v_scale, q_scale, input_scale, activation_scale, NVFP4's weight_scale_2
SCALE_PATTERNS = ("*_scale", "*_scale_inv", "*_scale_2")
CALIBRATION_SCALARS = "<0-d floating point>"
UE8M0_ONE = 127  # an unsigned exponent byte with bias 127: 2^(127-127) = 1.0
ROUNDING_TOLERANCE = 0.25  # relative; float8_e5m2 rounds by up to 12.5%, a saturated or flushed value is off by more

# quantization_config "quant_method" -> scale names too generic to treat as scales without it (GPTQ/AWQ per-group scales)
QUANTIZATION_SCALES = {"gptq": ("scales", "*.scales"), "awq": ("scales", "*.scales")}


@dataclasses.dataclass(frozen=True)
class RuleCount:
    """One rule and how many parameters got their value from it (after later rules won)."""

    pattern: str
    value: float | int | str
    source: str  # "scales='neutral'", "quantization_config" or "value_rules"
    parameters: int


@dataclasses.dataclass(frozen=True)
class RulesApplied:
    """Per rule, in the order rules are decided, the number of parameters it set."""

    rules: tuple[RuleCount, ...] = ()

    @property
    def parameters(self) -> int:
        return sum(rule.parameters for rule in self.rules)

    def summary_line(self) -> str:
        """One line for a summary, e.g. ``value rules: *_scale=neutral (scales='neutral') 12; *.k_scale=1.0 (value_rules) 2``."""
        shown = [r for r in self.rules if r.parameters or r.source == "value_rules"]  # a value rule matching nothing may be a typo
        if not shown:
            return "value rules: none (published rule)"
        return "value rules: " + "; ".join(f"{r.pattern}={r.value} ({r.source}) {r.parameters}" for r in shown)


def warn_not_applied(scales: str | None, value_rules: Mapping[str, Any] | None, where: str) -> None:
    """Under ``real_weights``: say which rules asked for are not applied (nothing when none were)."""
    asked = ([f"scales={scales!r}"] if scales == NEUTRAL else []) + ([f"value_rules={dict(value_rules)!r}"] if value_rules else [])
    if asked:
        warnings.warn(
            ValueRulesIgnoredWarning(
                f"{where}: {' and '.join(asked)} {'are' if len(asked) > 1 else 'is'} not applied: they replace dummy values, "
                "and real_weights loads the checkpoint's own; the test sees the checkpoint's values"
            ),
            stacklevel=2,
        )


def quantization_scale_patterns(quantization_config: Any) -> tuple[str, ...]:
    """The scale names a quantization config implies (a dict, or an object with ``to_dict`` or attributes)."""
    if hasattr(quantization_config, "to_dict"):
        quantization_config = quantization_config.to_dict()
    method = (
        quantization_config.get("quant_method")
        if isinstance(quantization_config, Mapping)
        else getattr(quantization_config, "quant_method", None)
    )
    return QUANTIZATION_SCALES.get(str(method).lower(), ())


def model_quantization_config(model: paddle.nn.Layer, model_config: Any = None) -> Any:
    """The quantization config the model class exposes (``model.config``), else the build's config's."""
    for holder in (getattr(model, "config", None), model_config):
        found = getattr(holder, "quantization_config", None) if holder is not None else None
        if found is None and isinstance(holder, Mapping):
            found = holder.get("quantization_config")
        if found:
            return found
    return None


def is_floating(param: paddle.Tensor) -> bool:
    """Paddle's ``is_floating_point`` says False for float8."""
    return param.is_floating_point() or dtypes.kind(param.dtype) == "float8"


def neutral_value(param: paddle.Tensor) -> float | int:
    """1.0 for floating point, 127 for a uint8 exponent scale (1.0 in UE8M0), 1 for other integers."""
    if param.dtype == paddle.uint8:
        return UE8M0_ONE
    return 1.0 if is_floating(param) else 1


def _checked_value(name: str, param: paddle.Tensor, value: float | int | str) -> float | int:
    """The value to write, checked to survive the cast to the parameter's dtype."""
    number = neutral_value(param) if value == NEUTRAL else value
    assert not isinstance(number, str)  # check_rule_arguments let no other text through
    dtype_name = str(param.dtype).replace("paddle.", "")
    if not is_floating(param):
        limits = np.iinfo(np.dtype(dtype_name)) if dtype_name != "bool" else None
        low, high = (limits.min, limits.max) if limits is not None else (0, 1)
        if number != int(number) or not low <= number <= high:
            raise DummyWeightsError(
                f"value {number!r} for parameter {name!r} is not representable in {dtype_name} (integers {low}..{high}): give a "
                "value in range, or a pattern that skips it"
            )
        return int(number)
    stored = float(paddle.to_tensor([float(number)], dtype="float64").astype(param.dtype).astype("float64").numpy()[0])
    if not math.isfinite(stored) or abs(stored - number) > ROUNDING_TOLERANCE * abs(number):  # overflow, saturation, underflow
        raise DummyWeightsError(
            f"value {number!r} for parameter {name!r} is not representable in {dtype_name} (it becomes {stored}): give a smaller "
            "value, or a pattern that skips it"
        )
    return float(number)


def write_constant(param: paddle.Tensor, value: float | int) -> None:
    """Set every element, on the parameter's device, through ``copy_`` (float8 and 0-d parameters included)."""
    if math.prod(param.shape) == 0:
        return
    wide = np.float64 if param.dtype == paddle.float64 else (np.float32 if is_floating(param) else np.int64)
    source = paddle.to_tensor(np.full(param.shape, value, dtype=wide), place=param.place)
    with paddle.no_grad():
        copy_into(param, source.astype(param.dtype))


def _rule_list(
    scales: str | None, value_rules: Mapping[str, Any] | None, quantization_patterns: tuple[str, ...]
) -> list[tuple[str, Any, str]]:
    """(pattern, value, source) in the order they are decided; the last match wins."""
    rules: list[tuple[str, Any, str]] = []
    if scales == NEUTRAL:
        rules.append((CALIBRATION_SCALARS, NEUTRAL, "scales='neutral'"))
        rules += [(pattern, NEUTRAL, "scales='neutral'") for pattern in SCALE_PATTERNS]
        rules += [(pattern, NEUTRAL, "quantization_config") for pattern in quantization_patterns]
    rules += [(pattern, value, "value_rules") for pattern, value in (value_rules or {}).items()]
    return rules


def _matches(pattern: str, name: str, param: paddle.Tensor) -> bool:
    if pattern == CALIBRATION_SCALARS:
        return len(param.shape) == 0 and is_floating(param)
    return fnmatch.fnmatchcase(name, pattern)


def apply_value_rules(
    model: paddle.nn.Layer,
    scales: str | None = None,
    value_rules: Mapping[str, Any] | None = None,
    model_config: Any = None,
) -> RulesApplied:
    """Overwrite the fill's values where a rule says so (see the module docstring for the order)."""
    check_rule_arguments(scales, value_rules)
    quantization_patterns = quantization_scale_patterns(model_quantization_config(model, model_config)) if scales == NEUTRAL else ()
    rules = _rule_list(scales, value_rules, quantization_patterns)
    counts = [0] * len(rules)
    for name, param in model.named_parameters():
        winner = next((index for index in reversed(range(len(rules))) if _matches(rules[index][0], name, param)), None)
        if winner is None:
            continue
        write_constant(param, _checked_value(name, param, rules[winner][1]))
        counts[winner] += 1
    return RulesApplied(
        tuple(RuleCount(pattern, value, source, count) for (pattern, value, source), count in zip(rules, counts, strict=True))
    )
