"""Settings from environment variables, through pydantic-settings: the base every component's
settings class extends (so a bad value is reported the same way everywhere, with its
variable's name, all problems at once), and the runner's own settings.

The runner is lenient with one group only: a malformed LLM setting falls back to its default
with a warning, since grading must never depend on the LLM's configuration. Every other bad
value stops the runner with a message that names the variable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources import InitSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from runner_image.contract import IsolationLevel

log = logging.getLogger("runner")

# The most the LLM feedback step may take, whatever the settings say. A runner Job's deadline
# reserves this much for it (tasks.launchers.deadline.LLM_BUDGET_SECONDS must not be lower).
LLM_BUDGET_CAP_SECONDS = 60.0


# The password of a URL's user:password@, hidden when a bad value is repeated in an error.
_CREDENTIALS = re.compile(r"([^\s:/@'\"]+):[^\s/@]+@")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the process must not start half-configured."""


class _GivenEnvironment(EnvSettingsSource):
    """Environment variables from a mapping instead of os.environ (tests, subprocess envs)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class EnvSettings(BaseSettings):
    """Field `foo_bar` is the variable FOO_BAR unless it names another (validation_alias).
    An empty variable counts as unset."""

    model_config = SettingsConfigDict(
        frozen=True, env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read `env` (default: os.environ); `overrides` are field values that win over it.
        Raises ConfigError listing every bad or missing variable."""
        sources = (
            InitSettingsSource(cls, overrides),
            _GivenEnvironment(cls, os.environ if env is None else env),
        )
        try:
            return cls(_build_sources=(sources, {}))
        except ValidationError as exc:
            raise ConfigError(cls.describe_errors(exc)) from None

    @classmethod
    def variable(cls, field: str) -> str:
        info = cls.model_fields.get(field)
        alias = info.validation_alias if info else None
        return alias if isinstance(alias, str) else field.upper()

    @classmethod
    def describe_errors(cls, exc: ValidationError) -> str:
        """One line naming every bad variable; secret values are never repeated."""
        problems = []
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            field = str(error["loc"][0]) if error["loc"] else None
            info = cls.model_fields.get(field) if field else None
            if field is None:
                problems.append(message)
            elif error["type"] == "missing":
                problems.append(f"{cls.variable(field)} is not set")
            elif info is not None and "SecretStr" in str(info.annotation):
                problems.append(f"{cls.variable(field)}: {message}")
            else:
                value = _CREDENTIALS.sub(r"\1:***@", repr(error["input"]))
                problems.append(f"{cls.variable(field)}={value}: {message}")
        return "invalid settings: " + "; ".join(problems)


def long_random_secret(value: SecretStr) -> SecretStr:
    """A signing secret short enough to guess would make every token forgeable."""
    if len(value.get_secret_value()) < 16:
        raise ValueError("must be a random value of at least 16 characters")
    return value


class GradingSettings(EnvSettings):
    """How runners grade: set on the scheduler, which passes them to every runner."""

    runner_require_isolation: IsolationLevel = IsolationLevel.BASIC
    # Retries of the runner's reports to the backend (with backoff), on top of the first.
    result_post_retries: int = Field(default=2, ge=0, le=10)
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    llm_timeout_seconds: float = Field(default=20.0, ge=0.1)
    llm_max_retries: int = Field(default=1, ge=0)
    llm_max_output_tokens: int = Field(default=1000, ge=0)


class RunnerSettings(GradingSettings):
    """What a launcher tells a runner (see tasks.launchers.base.Launcher.runner_env)."""

    submission_id: str
    # The grading round to grade (GRADING_ROUND; 0 = the first grading, one more per regrade).
    grading_round: int = Field(default=0, ge=0)
    redis_url: str
    backend_internal_url: str
    internal_result_token: SecretStr

    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = ("INTERNAL_RESULT_TOKEN", "LLM_API_KEY")

    @field_validator("llm_timeout_seconds", "llm_max_retries", "llm_max_output_tokens", mode="wrap")
    @classmethod
    def _lenient(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            default = cls.model_fields[info.field_name].default
            log.warning(
                "%s=%r is not valid (%s); using %s",
                cls.variable(info.field_name),
                value,
                exc.errors(include_url=False)[0]["msg"],
                default,
            )
            return default

    @classmethod
    def take_from_environment(cls) -> RunnerSettings:
        """Read the settings, then drop the secrets from os.environ so nothing inherits them."""
        settings = cls.from_env()
        for name in cls.SECRET_VARIABLES:
            os.environ.pop(name, None)
        return settings
