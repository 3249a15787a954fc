"""The shipped contract kit, run against every store of STORE_FACTORIES (see conftest.py)."""

from __future__ import annotations

import pytest

from octoqueue.testing.contract import StoreFactory, StoreKit

from .conftest import KNOWN_GAPS, STORE_FACTORIES


class TestContract(StoreKit):
    @pytest.fixture(params=sorted(STORE_FACTORIES))
    def store_factory(self, request: pytest.FixtureRequest) -> StoreFactory:
        gap = KNOWN_GAPS.get((request.param, request.function.__name__))
        if gap is not None:
            request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
        return STORE_FACTORIES[request.param]
