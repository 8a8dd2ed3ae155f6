"""The backend's internal API as its callers (the runner, the scheduler, the reconciler) use
it: retried with backoff, which is safe because every endpoint is idempotent."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from runner_image.contract.result import Result
from runner_image.contract.states import Status
from runner_image.contract.tokens import RESULT_TOKEN_HEADER

RETRY_STATUSES = (429, 500, 502, 503, 504)

# How a runner ends when it could not deliver its report (the backend unreachable or
# failing after every retry) or found no bundle to grade: EX_TEMPFAIL, "try again later".
# Nobody reports an error for it; the backend's sweep gives the submission a fresh runner,
# its bundle rebuilt from MongoDB if Redis lost it (webapp/sweeper.py).
UNREPORTED_EXIT_CODE = 75
# The Redis set where launchers and the reconciler put the submission ids of such runners,
# so that the sweep sends fresh ones at once instead of after the longest deadline.
UNREPORTED_KEY = "runners:unreported"


class CallbackError(RuntimeError):
    """The backend refused or never acknowledged a report."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def transient(self) -> bool:
        """The backend was unreachable or failing, not refusing this report."""
        return self.status_code is None or self.status_code in RETRY_STATUSES


class InternalApiClient:
    def __init__(
        self, base_url: str, token: str, retries: int = 2, backoff: float = 0.5, timeout: float = 10
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers[RESULT_TOKEN_HEADER] = token
        retry = Retry(
            total=retries,
            backoff_factor=backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def prepare_post(self, path: str, body: dict[str, Any]) -> requests.PreparedRequest:
        """The request `_post` would send, prepared, not sent (runner_image.main.warm_up)."""
        return self.session.prepare_request(
            requests.Request("POST", f"{self.base_url}{path}", json=body)
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.post(url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CallbackError(f"POST {url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise CallbackError(
                f"POST {url} -> {response.status_code}: {response.text[:500]}",
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise CallbackError(f"POST {url} answered {response.status_code} without JSON") from exc

    def post_status(
        self, submission_id: str, status: Status, job_name: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": str(status)}
        if job_name:
            body["job_name"] = job_name
        return self._post(f"/submissions/{submission_id}/status", body)

    def post_result(self, submission_id: str, result: Result) -> dict[str, Any]:
        return self._post(f"/submissions/{submission_id}/result", result.model_dump(mode="json"))

    def sweep(self) -> dict[str, Any]:
        """Ask the backend to move on what the pipeline dropped (requeue, expire)."""
        return self._post("/sweep", {})

    def close(self) -> None:
        self.session.close()
