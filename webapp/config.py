"""All settings, read once from environment variables (names from the seed architecture)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_CORS_ORIGINS = "http://localhost:3000,http://cloudemy.local"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the process must not start half-configured."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    mongo_uri: str | None = None
    db_name: str = "cloudemy"
    redis_url: str = "redis://localhost:6379/0"
    queue_submissions: str = "queue:submissions"
    internal_result_token: str = ""
    secret_key: str = ""
    cors_origins: tuple[str, ...] = field(
        default_factory=lambda: tuple(DEFAULT_CORS_ORIGINS.split(","))
    )
    access_token_ttl_seconds: int = 3600
    max_code_bytes: int = 64 * 1024
    max_request_bytes: int = 1024 * 1024
    bundle_ttl_seconds: int = 24 * 3600
    runner_launcher: str = "local"
    backend_internal_url: str = "http://backend:8000/internal"
    k8s_namespace: str = "default"
    runner_image: str = "cloudemy/runner:latest"
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    llm_timeout_seconds: int = 20
    llm_max_retries: int = 1
    llm_max_output_tokens: int = 1000
    demo_seed: bool = False
    # KubernetesLauncher and the reconciler (issue 5).
    max_running_jobs: int = 50
    runner_llm_secret: str = "cloudemy-llm"
    job_ttl_seconds: int = 3600
    runner_min_deadline_seconds: int = 120
    runner_max_deadline_seconds: int = 3600
    runner_cpu_request: str = "250m"
    runner_memory_request: str = "256Mi"
    runner_cpu_limit: str = "1"
    runner_memory_limit: str = "1Gi"
    runner_scratch_size: str = "512Mi"
    launch_defer_seconds: int = 15
    kube_request_timeout_seconds: int = 15
    reconcile_interval_seconds: int = 30
    # Languages the runners can build; None means every language the runner knows (the
    # runner image installs all of them). The local launcher also checks this machine.
    runner_languages: tuple[str, ...] | None = None
    runner_require_isolation: str = "basic"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        cors = env.get("CORS_ORIGINS", DEFAULT_CORS_ORIGINS)
        settings = cls(
            mongo_uri=env.get("MONGO_URI") or None,
            db_name=env.get("DB_NAME", "cloudemy"),
            redis_url=env.get("REDIS_URL", "redis://localhost:6379/0"),
            queue_submissions=env.get("QUEUE_SUBMISSIONS", "queue:submissions"),
            internal_result_token=env.get("INTERNAL_RESULT_TOKEN", ""),
            secret_key=env.get("SECRET_KEY", ""),
            cors_origins=tuple(o.strip() for o in cors.split(",") if o.strip()),
            access_token_ttl_seconds=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 3600),
            max_code_bytes=_int(env, "MAX_CODE_BYTES", 64 * 1024),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1024 * 1024),
            bundle_ttl_seconds=_int(env, "BUNDLE_TTL_SECONDS", 24 * 3600),
            runner_launcher=env.get("RUNNER_LAUNCHER", "local"),
            backend_internal_url=env.get("BACKEND_INTERNAL_URL", "http://backend:8000/internal"),
            k8s_namespace=env.get("K8S_NAMESPACE", "default"),
            runner_image=env.get("RUNNER_IMAGE", "cloudemy/runner:latest"),
            llm_model=env.get("LLM_MODEL", "gpt-4o-mini"),
            llm_base_url=env.get("LLM_BASE_URL") or None,
            llm_timeout_seconds=_int(env, "LLM_TIMEOUT_SECONDS", 20),
            llm_max_retries=_int(env, "LLM_MAX_RETRIES", 1),
            llm_max_output_tokens=_int(env, "LLM_MAX_OUTPUT_TOKENS", 1000),
            demo_seed=env.get("CLOUDEMY_DEMO_SEED", "") == "1",
            max_running_jobs=_int(env, "MAX_RUNNING_JOBS", 50),
            runner_llm_secret=env.get("RUNNER_LLM_SECRET") or "cloudemy-llm",
            job_ttl_seconds=_int(env, "JOB_TTL_SECONDS", 3600),
            runner_min_deadline_seconds=_int(env, "RUNNER_MIN_DEADLINE_SECONDS", 120),
            runner_max_deadline_seconds=_int(env, "RUNNER_MAX_DEADLINE_SECONDS", 3600),
            runner_cpu_request=env.get("RUNNER_CPU_REQUEST") or "250m",
            runner_memory_request=env.get("RUNNER_MEMORY_REQUEST") or "256Mi",
            runner_cpu_limit=env.get("RUNNER_CPU_LIMIT") or "1",
            runner_memory_limit=env.get("RUNNER_MEMORY_LIMIT") or "1Gi",
            runner_scratch_size=env.get("RUNNER_SCRATCH_SIZE") or "512Mi",
            launch_defer_seconds=_int(env, "LAUNCH_DEFER_SECONDS", 15),
            kube_request_timeout_seconds=_int(env, "KUBE_REQUEST_TIMEOUT_SECONDS", 15),
            reconcile_interval_seconds=_int(env, "RECONCILE_INTERVAL_SECONDS", 30),
            runner_languages=tuple(
                lang.strip() for lang in env["RUNNER_LANGUAGES"].split(",") if lang.strip()
            )
            if env.get("RUNNER_LANGUAGES")
            else None,
            runner_require_isolation=env.get("RUNNER_REQUIRE_ISOLATION") or "basic",
        )
        return replace(settings, **overrides)

    def require_secrets(self) -> None:
        """Refuse to serve with an empty signing secret: tokens would be forgeable."""
        missing = [
            name
            for name, value in (
                ("INTERNAL_RESULT_TOKEN", self.internal_result_token),
                ("SECRET_KEY", self.secret_key),
            )
            if len(value) < 16
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} must be set to a random value of at least 16 characters"
            )
        if self.runner_launcher not in ("local", "kubernetes"):
            raise ConfigError(
                f"RUNNER_LAUNCHER must be 'local' or 'kubernetes', got {self.runner_launcher!r}"
            )
