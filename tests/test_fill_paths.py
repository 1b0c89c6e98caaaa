"""Filling float8 goes through bounded scratch memory, never a full-size wider temporary."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, resource
    import paddle
    from pytest_dummyweights._values import fill, store

    def peak_bytes():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    layer = paddle.nn.Layer()
    with paddle.LazyGuard():
        layer.weight = layer.create_parameter(
            [{count}], dtype="float8_e4m3fn", default_initializer=paddle.nn.initializer.Constant(0.0)
        )
    store_dir = {store_dir!r}  # this test's own: no other run prunes or rebuilds it while the peak is measured
    int(store.open_store("float32", 0, 0.02, store_dir).data[::4096].sum())  # shared by every parameter: not scratch
    before = peak_bytes()
    fill.initialize_dummy_weights(layer, seed=0, std=0.02, store_dir=store_dir)
    sample = layer.weight[:65536].astype("float32").numpy()
    print(json.dumps({{"before": before, "after": peak_bytes(), "std": float(sample.std()), "zeros": int((sample == 0).sum())}}))
    """
)


def test_float8_fill_needs_scratch_bounded_by_the_chunk_not_the_parameter(tmp_path):
    from pytest_dummyweights._values import fill

    count = 256 * 2**20  # 256 MiB of float8; a float16 copy alone would be 512 MiB
    script = SCRIPT.format(count=count, store_dir=str(tmp_path))
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    measured = json.loads(output.strip().splitlines()[-1])
    scratch = measured["after"] - measured["before"] - count  # the parameter itself is touched once
    chunk_scratch = fill.COPY_BYTES // 4 * (4 + 4 + 1)  # per float32 element: its bits, a float32 tensor, the float8 cast
    assert scratch < 4 * chunk_scratch + 32 * 2**20, f"fill needed {scratch / 2**20:.0f} MiB beyond the parameter"
    assert 0.015 < measured["std"] < 0.025  # normal values, not zeros
    assert measured["zeros"] < 65536 // 10  # e4m3 rounds |x| < 2**-10 to zero: about 4% at std 0.02


def test_the_copy_path_for_devices_writes_the_same_bits_as_the_host_path():
    """GPUs fill through copy_ from widened values; run that path on CPU and compare it bit for bit."""
    import paddle

    from pytest_dummyweights._runtime import private_paddle as internals
    from pytest_dummyweights._values import fill

    def layer_of(dtypes):
        layer = paddle.nn.Layer()
        for index, dtype in enumerate(dtypes):
            setattr(layer, f"w{index}", layer.create_parameter([3, fill.COPY_BYTES // 2 + 17], dtype=dtype))
        return layer

    dtypes = ["float16", "bfloat16", "float32", "float64"]
    host, device = layer_of(dtypes), layer_of(dtypes)
    fill.initialize_dummy_weights(host, seed=7, std=0.5, storage="filled")
    for (name, expected), (_, param), dtype in zip(host.named_parameters(), device.named_parameters(), dtypes, strict=True):
        fill.fill_by_copy(param, *fill.source_of(name, param, 7, 0.5))
        assert (internals.host_view(param) == internals.host_view(expected)).all(), dtype
