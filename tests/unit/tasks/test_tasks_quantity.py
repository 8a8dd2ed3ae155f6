"""Kubernetes quantities read without importing the kubernetes package in the backend:
the same values as kubernetes' own parser."""

from __future__ import annotations

import pytest
from kubernetes.utils import parse_quantity

from tasks.settings import SchedulerSettings, quantity_value


@pytest.mark.parametrize(
    "quantity",
    ["1", "250m", "1500m", "0.5", "1k", "2M", "3G", "1T", "512Ki", "256Mi", "1Gi", "1.5Gi", "2Ti"],
)
def test_a_quantity_is_worth_what_kubernetes_says(quantity):
    assert quantity_value(quantity) == parse_quantity(quantity)


@pytest.mark.parametrize(("limit", "mib"), [("1Gi", 1024), ("512Mi", 512), ("1G", 953)])
def test_the_runner_memory_limit_in_mib(limit, mib):
    settings = SchedulerSettings.from_env(
        {}, internal_result_token="t" * 32, redis_url="redis://r:6379/0", runner_memory_limit=limit
    )

    assert settings.runner_memory_limit_mib == mib


def test_the_backend_does_not_load_the_kubernetes_client():
    """About 35 MiB per gunicorn worker (docs/deploy.md, "Sizing"); read from the source,
    since this test process has loaded kubernetes itself."""
    from tests.unit.test_architecture import REPO, imported_packages

    offending = [
        str(module.relative_to(REPO))
        for module in sorted((REPO / "webapp").rglob("*.py"))
        if "kubernetes" in imported_packages(module)
    ]
    assert offending == []
