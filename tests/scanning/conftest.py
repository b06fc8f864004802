from __future__ import annotations

import pytest

from secops.scanning import FileResult, Scanner


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    return Scanner()


def ids(result: FileResult) -> set[str]:
    return {f.id for f in result.findings}


def located(result: FileResult, finding_id: str) -> set[str | None]:
    return {f.location for f in result.findings if f.id == finding_id}
