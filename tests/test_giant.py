"""A full-size DeepSeek-V3 (the published config, bfloat16, 671 B parameters) builds through the plugin with
mapped storage, in a pytest session of its own (a subprocess, so its memory goes away with it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.paddleformers

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "deepseek-v3"
PEAK_RSS_LIMIT = 4e9
# The lazily constructed class's count (no weights), from bench/mapped_build.py's construct-only case on
# paddleformers 0.4.1; that bench checks the mapped build against a fresh construction on every run.
# Constructing it again here would add 10-25 s of CPU to CI.
LAZILY_CONSTRUCTED = 671_026_404_352

GIANT = """
    import json
    import resource

    import numpy as np
    import paddle
    import pytest

    from pytest_dummyweights._values import mapped
    from pytest_dummyweights._values.fill import fill_values
    from pytest_dummyweights._runtime.private_paddle import host_view

    READ = ("model.layers.30.mlp.experts.100.up_proj.weight", "model.layers.60.mlp.experts.255.down_proj.weight")

    @pytest.mark.dummy_load({config!r}, dtype="bfloat16", overrides={{"seq_length": 8}})
    def test_full_size_deepseek_v3(dummy_model):
        named = dict(dummy_model.named_parameters())
        values = {{}}
        for name in READ:
            param = named[name]
            expected = paddle.empty(param.shape, dtype=param.dtype)
            fill_values(name, expected, seed=0, std=dummy_model.config.initializer_range)  # the filled path's bits
            same = bool(np.array_equal(host_view(param), host_view(expected)))
            first = param[0, :4].astype("float32").numpy().tolist()
            values[name] = {{"mapped": mapped.is_mapped(param), "equal_to_filled": same, "first": first}}
        built = sum(int(np.prod(param.shape)) for param in dummy_model.parameters())
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with open("giant.json", "w") as out:
            json.dump({{"built": built, "values": values, "peak_rss": peak_rss}}, out)
    """


def test_full_size_deepseek_v3_builds_mapped_under_4_gb(inner):
    inner.write("test_giant_inner.py", GIANT.format(config=str(CONFIG)))
    # --no-dummy-cache: nothing to keep for a later test, so no isolation snapshot of its 45k parameters either
    result = inner.run("--dummy-storage", "mapped", "--no-dummy-cache", "-q", subprocess=True, timeout=900)
    result.assert_outcomes(passed=1)
    report = json.loads((inner.path / "giant.json").read_text())
    assert round(report["built"] / 1e9, 1) == 671.0
    assert report["built"] == LAZILY_CONSTRUCTED
    for name, read in report["values"].items():
        assert read["mapped"] and read["equal_to_filled"], name
        assert any(read["first"]) and all(abs(value) < 0.2 for value in read["first"]), name
    assert report["peak_rss"] < PEAK_RSS_LIMIT, f"peak RSS {report['peak_rss'] / 1e9:.2f} GB"
