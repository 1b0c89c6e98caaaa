"""Checkpoint-shaped dummy loading: feed a manifest's tensors, as dummy values, through a model's own ``load_weights``.

Paddle inference engines load a checkpoint with ``model.load_weights(weights)``, ``weights`` an
iterable of ``(checkpoint_name, tensor)``; their loaders map names, stack projections, transpose and
derive weights (MLA's ``k_b_proj_weight``/``v_b_proj_weight``). Feeding that loader a dummy tensor of
each header's dtype and shape runs all of it at memory speed. To know what the loader wrote, every
parameter is first filled with a sentinel (NaN for floats, the largest value for integers); a
parameter that still holds a sentinel element afterwards was never (or only partly) written.

What the loader raises is the model's problem, reported against the tensor it was given. Making a tensor
(a dtype Paddle lacks, such as safetensors' F4; a failed read of real weights) is the plugin's side: it
is raised as the plugin's own ``DummyWeightsError`` naming the tensor, whatever the loader made of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import paddle

from pytest_dummyweights import mla
from pytest_dummyweights._checkpoints.manifest import Manifest, TensorEntry
from pytest_dummyweights._checkpoints.structure import CheckReport, LoaderError
from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights._runtime.private_paddle import element_count, host_view
from pytest_dummyweights._values import fill
from pytest_dummyweights.errors import DummyWeightsError, folded
from pytest_dummyweights.vocabulary import DEFAULT_SEED, DEFAULT_STD

PADDLE_DTYPES = {code: dtype.paddle for code, dtype in dtypes.BY_SAFETENSORS.items() if dtype.paddle}
# all-ones but the top bit, per element width: NaN in every float dtype (float8 too), the largest signed integer
SENTINEL = {width: np.dtype(dtypes.integer(width, signed=False)).type(2 ** (8 * width - 1) - 1) for width in (1, 2, 4, 8)}

MakeTensor = Callable[[str, TensorEntry], paddle.Tensor]


@dataclasses.dataclass
class FeedResult:
    """``report``: parameters never written (missing) and what the loader raised; ``written``: the parameters it wrote."""

    report: CheckReport
    written: frozenset[str]


def has_load_weights(model: Any) -> bool:
    return callable(getattr(model, "load_weights", None))


def paddle_dtype(safetensors_dtype: str) -> str:
    try:
        return PADDLE_DTYPES[safetensors_dtype]
    except KeyError:
        raise DummyWeightsError(
            f"dtype {safetensors_dtype!r} has no Paddle dtype (Paddle has {', '.join(PADDLE_DTYPES)}); the model's loader cannot be fed "
            "this checkpoint: leave checkpoint= off for it, or convert the checkpoint"
        ) from None


def dummy_tensor(
    name: str, entry: TensorEntry, *, seed: int = DEFAULT_SEED, std: float = DEFAULT_STD, store_dir: Any = None
) -> paddle.Tensor:
    """A CPU tensor of the header's dtype and shape, with the dummy values of a parameter called ``name``."""
    dtype = getattr(paddle, paddle_dtype(entry.dtype))
    floating = dtype in fill.NORMAL_DTYPES or dtype in fill.FLOAT8_DTYPES
    tensor = (paddle.empty if floating else paddle.zeros)(list(entry.shape), dtype=dtype)
    if floating and element_count(entry.shape):
        fill.fill_values(name, tensor, seed, std, store_dir)
    return tensor


def tensor_error(name: str, entry: TensorEntry, error: Exception) -> DummyWeightsError:
    """What went wrong making checkpoint tensor ``name`` (its dtype or shape, a failed read), as the plugin's own error."""
    cause = str(error) if isinstance(error, DummyWeightsError) else f"making it failed ({folded(error)})"
    return DummyWeightsError(f"checkpoint tensor {name!r} ({entry.dtype} {list(entry.shape)} in {entry.shard}): {cause}")


def fill_sentinel(model: paddle.nn.Layer) -> None:
    """Give every parameter storage holding only sentinel elements (CPU: the sentinel is written through a host view)."""
    for name, param in model.named_parameters():
        fill.materialize(param, zeros=False)
        if not param.place.is_cpu_place():
            raise DummyWeightsError(
                f"parameter {name} is on {param.place}: checkpoint-shaped dummy loading runs on CPU for now; build with device='cpu'"
            )
        if element_count(param.shape):
            host_view(param)[:] = SENTINEL[param.element_size()]


def fully_written(param: paddle.Tensor) -> bool:
    if not element_count(param.shape):
        return True
    return not bool((host_view(param) == SENTINEL[param.element_size()]).any())


def underived_mla_weights(model: paddle.nn.Layer) -> list[str]:
    """MLA layers' ``k_b_proj_weight``/``v_b_proj_weight`` that loading should have derived and did not."""
    return [
        f"{name}.{attribute}" if name else attribute
        for name, layer in model.named_sublayers(include_self=True)
        if mla.is_mla_layer(layer)
        for attribute in mla.DERIVED_WEIGHTS
        if getattr(layer, attribute, None) is None
    ]


def feed_load_weights(model: paddle.nn.Layer, manifest: Manifest, make_tensor: MakeTensor = dummy_tensor) -> FeedResult:
    """Run ``model.load_weights`` over every manifest entry as a dummy tensor; report what it never wrote or raised on."""
    if not has_load_weights(model):
        raise DummyWeightsError(f"{type(model).__qualname__} has no load_weights(weights); check it with checkpoint.check_model instead")
    fill_sentinel(model)
    current = ["(before the first tensor)"]
    unmade: list[DummyWeightsError] = []

    def weights() -> Iterator[tuple[str, paddle.Tensor]]:
        for name, entry in manifest.tensors.items():
            current[0] = name
            try:
                tensor = make_tensor(name, entry)
            except Exception as error:  # the plugin's side: reading or making the tensor, before the loader sees it
                unmade.append(tensor_error(name, entry, error))
                raise
            yield name, tensor

    errors = []
    try:
        model.load_weights(weights())
    except Exception as error:  # the engine's own code: report it against the tensor it was given
        errors.append(LoaderError(current[0], folded(error)))
    if unmade:  # whatever the loader made of it, the cause is the plugin's, not the loader's
        raise unmade[0]
    params = dict(model.named_parameters())
    written = frozenset(name for name, param in params.items() if fully_written(param))
    missing = sorted({*(set(params) - written), *underived_mla_weights(model)})
    report = CheckReport(manifest.source, missing=missing, index_problems=list(manifest.index_problems), loader_errors=errors)
    return FeedResult(report, written)
