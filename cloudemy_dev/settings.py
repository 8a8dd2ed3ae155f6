"""The dev stack's own settings (`cloudemy dev`, `cloudemy demo`): where it listens, the
Redis to use instead of a private one, and whether to seed the demo accounts. Only the dev
stack reads them; `cloudemy serve` never seeds anything."""

from __future__ import annotations

from pydantic import Field

from runner_image.settings import EnvSettings


class DevSettings(EnvSettings):
    port: int = Field(default=8000, ge=1, le=65535)
    # Unset: the dev stack starts a private redis-server (or fakeredis's server).
    redis_url: str | None = Field(default=None, pattern=r"^(redis|rediss|unix)://")
    # Seeds the demo instructor and student, whose passwords are printed in the README and
    # the banner, so anyone knows them. None: seed only the in-process stand-in (mongomock),
    # never a real MongoDB the dev stack was pointed at.
    cloudemy_demo_seed: bool | None = None

    def seeds(self, mongo_uri: str) -> bool:
        if self.cloudemy_demo_seed is not None:
            return self.cloudemy_demo_seed
        return mongo_uri.startswith("mongomock://")
