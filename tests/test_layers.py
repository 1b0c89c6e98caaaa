"""The package's import graph has no cycle, counting function-level imports (the layers themselves are
import-linter's contracts in pyproject.toml, checked by ci/check)."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")


def test_no_module_of_the_package_imports_itself_back() -> None:
    graph = grimp.build_graph("pytest_dummyweights", exclude_type_checking_imports=True)
    cycles = [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert cycles == []
