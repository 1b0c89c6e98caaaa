"""Mapped parameters: the same bits as filled ones, every written page found and restored exactly, the
mapping alive while any tensor views it, and the mapping limit handled."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import paddle
import pytest
from conftest import TESTS_DIR
from engine_models import SHRINK, zoo_config
from engine_models.layers import ParamZoo, parameter_digests

from pytest_dummyweights import DummyWeightsError, build_dummy_model
from pytest_dummyweights._runtime import private_paddle as internals
from pytest_dummyweights._values import fill, mapped, pages, store

MIB = 1 << 20
WITH_TESTS = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}  # subprocesses import engine_models
# every dtype; shapes crossing a store window and ending off a page boundary; one small (copied) parameter
PARAMS = {
    "big_bfloat16": ("bfloat16", [17, (store.WINDOW_BYTES // 2) // 16 + 3]),
    **{f"w_{dtype}": (dtype, [3, MIB // 2 + 17]) for dtype in ("float16", "float32", "float64", "float8_e4m3fn", "float8_e5m2")},
    "w_int8": ("int8", [4, MIB]),
    "small": ("float32", [16, 16]),
}


@pytest.fixture(params=["PAGEMAP_SCAN", "PAGEMAP_SCAN over the span", "pagemap entries"])
def page_scan(request, monkeypatch):
    """Written pages found every way: the ioctl (Linux 6.7+) per region or over a model's whole span, and
    reading the entries (older kernels)."""
    if request.param == "pagemap entries":
        monkeypatch.setattr(pages, "scan_supported", False)
    elif not pages.has_scan():
        pytest.skip("this kernel has no PAGEMAP_SCAN")
    elif request.param == "PAGEMAP_SCAN over the span":
        monkeypatch.setattr(mapped, "SPAN_SCAN_REGIONS", 2)


def build_zoo(storage: str | None, seed: int = 3, **params) -> ParamZoo:
    return build_dummy_model(zoo_config(**(params or PARAMS)), model=ParamZoo, seed=seed, std=0.05, storage=storage)


def bits(param: paddle.Tensor) -> np.ndarray:
    return internals.host_view(param).copy()


def test_mapped_and_filled_give_the_same_bits_for_every_dtype():
    mapped_model, filled_model = build_zoo("mapped"), build_zoo("filled")
    for (name, param), (_, filled_param) in zip(mapped_model.named_parameters(), filled_model.named_parameters(), strict=True):
        assert np.array_equal(bits(param), bits(filled_param)), name
        big = int(np.prod(param.shape)) * param.element_size() >= fill.MAPPED_MIN_BYTES
        assert mapped.is_mapped(param) == (big and "float8" not in name), name
        assert not mapped.is_mapped(filled_param)
    assert float(mapped_model.big_bfloat16.astype("float32").std()) == pytest.approx(0.05, rel=0.01)
    assert not np.any(bits(mapped_model.w_int8))


MAPPED_DIGESTS = """
    import json, sys
    from engine_models import zoo_config
    from engine_models.layers import ParamZoo, parameter_digests
    from pytest_dummyweights import build_dummy_model
    params = json.loads(sys.argv[1])
    model = build_dummy_model(zoo_config(**params), model=ParamZoo, seed=3, std=0.05, storage="mapped")
    print(json.dumps(parameter_digests(model)))
    """


def test_another_process_maps_the_bits_this_one_fills():
    output = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MAPPED_DIGESTS), json.dumps(PARAMS)],
        capture_output=True,
        text=True,
        check=True,
        env=WITH_TESTS,
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == parameter_digests(build_zoo("filled"))


def test_one_element_written_in_the_middle_is_found_and_restored_exactly(page_scan):
    model, fresh = build_zoo("mapped"), build_zoo("mapped")
    param = model.big_bfloat16
    middle = param.shape[0] // 2
    with paddle.no_grad():
        param[middle, 12345] = 1.0
    assert mapped.written_pages(param) == 1
    assert not np.array_equal(bits(param), bits(fresh.big_bfloat16))
    assert mapped.restore(param) == store.PAGE
    assert mapped.written_pages(param) == 0 and np.array_equal(bits(param), bits(fresh.big_bfloat16))


def test_set_value_of_a_copy_with_one_element_changed_is_restored_exactly(page_scan):
    model, fresh = build_zoo("mapped"), build_zoo("mapped")
    param = model.w_float32
    values = param.numpy()
    values[1, values.shape[1] // 2] += 1.0
    param.set_value(values)
    assert mapped.is_mapped(param) and mapped.written_pages(param) > 0  # set_value writes in place
    mapped.restore(param)
    assert np.array_equal(bits(param), bits(fresh.w_float32))


@pytest.mark.paddleformers
def test_an_optimizer_step_is_restored_exactly(page_scan):
    config, overrides = SHRINK["llama"]
    grown = {**overrides, "vocab_size": 8192}  # embedding and head of 2 MiB: mapped
    model = build_dummy_model(config, overrides=grown, storage="mapped")
    fresh = build_dummy_model(config, overrides=grown, storage="mapped")
    model.train()
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=model.parameters())
    loss = model(paddle.to_tensor([[1, 2, 3, 4]]), labels=paddle.to_tensor([[2, 3, 4, 5]]))[0]
    loss.backward()
    optimizer.step()
    written = {name: mapped.written_pages(param) for name, param in model.named_parameters() if mapped.is_mapped(param)}
    assert written and all(count > 0 for count in written.values()), written
    assert mapped.written_bytes(model) == sum(written.values()) * store.PAGE  # over the model: the same
    assert mapped.restore_model(model) == sum(written.values()) * store.PAGE
    assert mapped.written_bytes(model) == 0
    for (name, param), (_, expected) in zip(model.named_parameters(), fresh.named_parameters(), strict=True):
        if mapped.is_mapped(param):
            assert np.array_equal(bits(param), bits(expected)), name


class Tied(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.embed = paddle.nn.Embedding(4096, 128)
        self.head = paddle.nn.Linear(128, 4096, bias_attr=False)
        self.head.weight = self.embed.weight  # a tied weight: one parameter, two layers


def test_an_in_place_op_on_a_tied_weight_is_restored_through_either_layer(page_scan):
    with paddle.LazyGuard():
        model, fresh = Tied(), Tied()
    for layer in (model, fresh):
        assert fill.initialize_dummy_weights(layer, seed=1, std=0.02).storage == "mapped"
    with paddle.no_grad():
        model.head.weight.scale_(2.0)
    assert mapped.written_pages(model.embed.weight) == 4096 * 128 * 4 // store.PAGE
    mapped.restore(model.head.weight)
    assert np.array_equal(bits(model.embed.weight), bits(fresh.embed.weight))


def test_a_slice_kept_after_the_model_is_dropped_reads_valid_values():
    model = build_zoo("mapped")
    expected = bits(build_zoo("filled").big_bfloat16)[5 * 1024 : 6 * 1024]
    kept = model.big_bfloat16.view([-1])[5 * 1024 : 6 * 1024]
    region = mapped.region_of(model.big_bfloat16)
    assert kept.data_ptr() == region.address + 5 * 1024 * 2  # a view into the mapping, not a copy
    alive = weakref.ref(region)
    del model, region
    gc.collect()
    assert alive() is not None  # the slice keeps the mapping
    assert np.array_equal(kept.view(paddle.int16).numpy().view(np.uint16), expected)
    del kept
    gc.collect()
    assert alive() is None  # and the last view's release unmaps it


def test_memory_usage_counts_touched_pages_shared_and_written_private(page_scan):
    model = build_zoo("mapped", big=("float32", [1024, 1024]), small=("float32", [8, 8]))
    untouched = mapped.memory_usage(model)
    assert untouched.virtual == (1024 * 1024 + 64) * 4 and untouched.resident == untouched.private == 64 * 4
    float(model.big.sum())
    read = mapped.memory_usage(model)
    assert read.shared == 4 * MIB and read.resident == 4 * MIB + 64 * 4
    with paddle.no_grad():
        model.big[0, 0] = 1.0
    written = mapped.memory_usage(model)
    assert written.private == store.PAGE + 64 * 4 and written.shared == 4 * MIB - store.PAGE


def test_a_mapping_limit_too_small_is_an_error_naming_it_or_a_fallback_with_a_message():
    config = zoo_config(**PARAMS)
    with pytest.raises(DummyWeightsError, match=r"^mapped storage needs \d+ memory mappings .*\(vm\.max_map_count = 100\)"):
        fill.initialize_dummy_weights(build_dummy_model(config, model=ParamZoo, storage="filled"), storage="mapped", map_limit=100)
    model = build_dummy_model(config, model=ParamZoo, storage="filled")
    report = fill.initialize_dummy_weights(model, seed=3, std=0.05, map_limit=100)
    assert report.storage == "filled" and report.mapped == 0
    assert "vm.max_map_count = 100" in report.messages[0] and report.messages[0].endswith("filled instead")
    assert not any(mapped.is_mapped(param) for param in model.parameters())
    assert parameter_digests(model) == parameter_digests(build_zoo("mapped"))


def test_filled_forced_maps_nothing_and_counts_every_byte_private():
    model = build_zoo("filled")
    assert not any(mapped.is_mapped(param) for param in model.parameters())
    usage = mapped.memory_usage(model)
    assert usage.private == usage.resident == usage.virtual > 0 and usage.shared == 0
    with pytest.raises(ValueError, match="not a mapping"):
        mapped.restore(model.big_bfloat16)


def test_an_os_refusal_is_a_one_line_error_naming_the_limit():
    """Address space capped below what the reservation needs: the kernel refuses the mapping."""
    script = textwrap.dedent(
        """
        import resource
        from engine_models import zoo_config
        from engine_models.layers import ParamZoo
        from pytest_dummyweights import DummyWeightsError, build_dummy_model
        import paddle
        config = zoo_config(huge=("bfloat16", [1 << 20, 1 << 16]))  # 128 GiB of address space
        with open("/proc/self/status") as status:
            vm_size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm_size + (4 << 30), resource.RLIM_INFINITY))
        try:
            build_dummy_model(config, model=ParamZoo, storage="mapped")
        except DummyWeightsError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=WITH_TESTS)
    message = result.stdout.strip().splitlines()[-1]
    assert message.startswith("mapping parameter huge was refused (Cannot allocate memory)") and "vm.max_map_count" in message
