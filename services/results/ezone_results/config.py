"""Settings of the results service: the kit's settings plus anything only this service reads."""

from pathlib import Path

from ezone_kit.devkeys import PRIVATE_KEY_FILE
from ezone_kit.settings import KitSettings
from pydantic import Field


class Settings(KitSettings):
    ezone_oauth_signing_key_file: str | None = Field(
        None,
        description="PEM private key (ES256 or RS256) that signs the tokens of `POST /oauth/token`; its public key must be "
        "in the JWKS the services trust (EZONE_JWKS_URL). Unset: the dev key beside a file JWKS, when there is one.",
    )
    ezone_oauth_token_ttl_s: int = Field(3600, ge=60, description="Lifetime of the access tokens `POST /oauth/token` issues.")
    ezone_review_min_interval_ms: int = Field(
        1000, ge=0, description="A school's subject is reviewed at most this often: results arriving meanwhile (a bulk "
        "load) wait for one review after it, instead of a review per commit. One arriving after a quiet spell is "
        "reviewed at once.")
    ezone_review_max_interval_ms: int = Field(
        8000, ge=0, description="While results of a school's subject keep arriving, each review doubles the wait "
        "before the next (from ezone_review_min_interval_ms), up to this; a subject quiet this long is reviewed at "
        "once again.")

    def oauth_signing_key_path(self) -> Path | None:
        if self.ezone_oauth_signing_key_file:
            return Path(self.ezone_oauth_signing_key_file)
        if self.ezone_jwks_url.startswith(("http://", "https://")):
            return None
        # Locally (`ezone up`, tests) the JWKS is a file written next to the dev signing key.
        beside_jwks = Path(self.ezone_jwks_url.removeprefix("file://")).parent / PRIVATE_KEY_FILE
        return beside_jwks if beside_jwks.exists() else None
