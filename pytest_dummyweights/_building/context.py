"""Where a build runs: what it needs beyond its spec, given as one object to the plan, the build and the cache.

The spec says which model; the context says where to look for relative paths, whose hooks to call, and which
xdist worker builds (that chooses its GPU). In pytest the plugin makes one per test; outside it the default
context has no hooks, no worker, and no search directories (``build_dummy_model`` passes the working directory).
Importable without Paddle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_dummyweights.vocabulary import check_search_dirs, check_worker_id

if TYPE_CHECKING:
    from pytest_dummyweights.spec import DummySpec


class BuildHooks(Protocol):
    """What the build calls out to, by keyword: in pytest, the test's ``node.ihook`` (the hooks of the plugins and
    the conftests above the test); see ``hookspecs`` for what each returns."""

    def pytest_dummyweights_resolve_model(self, *, model_config: Any, spec: DummySpec) -> Any: ...

    def pytest_dummyweights_post_process(self, *, model: Any, model_config: Any, spec: DummySpec) -> Any: ...

    def pytest_dummyweights_smoke(self, *, model: Any, model_config: Any, spec: DummySpec) -> Any: ...

    def pytest_dummyweights_checkpoint_layout(self, *, model: Any, model_config: Any, spec: DummySpec, manifest: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """Where a build runs.

    ``search_dirs``: where a relative config or checkpoint path is looked up, in order (any paths; kept as a tuple
    of ``Path``). ``hooks``: the hook relay the build calls (see ``BuildHooks``), None for none. ``worker_id``: the
    xdist worker building (``"gw1"``), which picks its GPU for ``device="auto"``; None outside xdist.
    """

    search_dirs: tuple[Path, ...] = ()
    hooks: BuildHooks | None = None
    worker_id: str | None = None

    def __post_init__(self) -> None:
        check_worker_id(self.worker_id)
        object.__setattr__(self, "search_dirs", tuple(Path(directory) for directory in check_search_dirs(self.search_dirs)))
