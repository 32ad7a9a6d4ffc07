"""AuthConfig and AuthCredential: what a tool needs to authenticate, and what it got."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class AuthCredential(BaseModel):
    """A credential: an API key, OAuth2 tokens or HTTP auth, kept as opaque fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    auth_type: str
    """e.g. `apiKey`, `oauth2`, `http`, `serviceAccount`."""

    api_key: str | None = None
    oauth2: dict[str, Any] | None = None
    http: dict[str, Any] | None = None


class AuthConfig(BaseModel):
    """How a tool authenticates; `credential_key` names the stored credential."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    credential_key: str
    """Stable key the credential is stored under (per app and user)."""

    auth_scheme: dict[str, Any] | None = None
    raw_auth_credential: AuthCredential | None = None
    exchanged_auth_credential: AuthCredential | None = None
