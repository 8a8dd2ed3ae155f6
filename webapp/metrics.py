"""Prometheus metrics. Submission counts are read from MongoDB at scrape time, so every
replica reports the same truth; request counters are per process."""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from runner_image.contract import Status
from webapp.models import Submission

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "cloudemy_http_requests",
    "HTTP requests served",
    ["method", "endpoint", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "cloudemy_http_request_seconds", "HTTP request latency", ["endpoint"], registry=REGISTRY
)
GRADING_SECONDS = Histogram(
    "cloudemy_grading_seconds",
    "From submission to stored result",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)


class SubmissionsByStatus:
    def collect(self):
        family = GaugeMetricFamily(
            "cloudemy_submissions", "Submissions by status", labels=["status"]
        )
        counts = {str(status): 0 for status in Status}
        for row in Submission.objects.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
            counts[row["_id"]] = row["n"]
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family


REGISTRY.register(SubmissionsByStatus())


def instrument(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response):
        endpoint = request.endpoint or "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        return response
