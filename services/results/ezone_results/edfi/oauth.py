"""OAuth2 client credentials (RFC 6749 §4.4) for SIS clients: a zone admin registers a client for
some of the zone's schools; the client trades its id and secret for a short-lived `sis` token that
every ezone service verifies like any other (same claims, a key the trusted JWKS publishes)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from cryptography.hazmat.primitives import serialization
from ezone_kit.auth import JwksVerifier, Principal, sign_token, token_claims
from ezone_kit.problems import Problem, validation_problem
from ezone_kit.uow import UnitOfWork
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..models import schools as directory
from .models import OAuthClient
from .schemas import OAuthClientIn, OAuthClientOut

# scrypt (RFC 7914) at n=2^14, r=8: ~16 MiB and tens of milliseconds per check — slow for a guesser,
# and paid once per token, not per request.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    expected = _unb64(digest)
    actual = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def _unknown_client_hash() -> str:
    """Checked against when the client id is unknown, so a wrong id costs as long as a wrong secret."""
    return hash_secret(secrets.token_urlsafe(32))


def client_out(client: OAuthClient, *, created: bool, secret: str | None = None) -> OAuthClientOut:
    return OAuthClientOut(client_id=client.client_id, zone_id=client.zone_id, name=client.name, schools=client.schools,
                          created_at=client.created_at, created=created, client_secret=secret)


async def register_client(uow: UnitOfWork, actor: Principal, zone_id: str, data: OAuthClientIn) -> OAuthClientOut:
    """Idempotent on the name: the same client again answers without a secret (it is shown only once)."""
    wanted = list(dict.fromkeys(data.schools))
    known = set(
        (await uow.session.execute(
            select(directory.c.id).where(directory.c.zone_id == zone_id, directory.c.id.in_(wanted))
        )).scalars()
    )
    unknown = [{"loc": ("body", "schools", i), "msg": f"no school {school} in zone {zone_id}", "type": "unknown_school"}
               for i, school in enumerate(wanted) if school not in known]
    if unknown:
        raise validation_problem(unknown)
    secret = secrets.token_urlsafe(32)
    secret_hash = await asyncio.to_thread(hash_secret, secret)
    client = (
        await uow.session.execute(
            pg_insert(OAuthClient)
            .values(client_id=f"ezc_{secrets.token_hex(10)}", zone_id=zone_id, name=data.name, schools=wanted,
                    secret_hash=secret_hash, created_by=actor.subject)
            .on_conflict_do_nothing(index_elements=[OAuthClient.zone_id, OAuthClient.name])
            .returning(OAuthClient)
        )
    ).scalar_one_or_none()
    if client is None:
        existing = (
            await uow.session.execute(select(OAuthClient).where(OAuthClient.zone_id == zone_id, OAuthClient.name == data.name))
        ).scalar_one()
        if set(existing.schools) != set(wanted):
            raise Problem(409, f"An SIS client named {data.name!r} already exists in {zone_id} for other schools; "
                               "register the new one under another name.", client_id=existing.client_id)
        return client_out(existing, created=False)
    await uow.audit(actor=actor, action="oauth_client.registered", entity="oauth_client", entity_id=client.client_id,
                    zone_id=zone_id, after={"name": client.name, "schools": [str(s) for s in wanted]})
    await uow.commit()
    return client_out(client, created=True, secret=secret)


async def list_clients(session: AsyncSession, zone_id: str) -> list[OAuthClientOut]:
    rows = (await session.execute(select(OAuthClient).where(OAuthClient.zone_id == zone_id).order_by(OAuthClient.name))).scalars()
    return [client_out(client, created=False) for client in rows]


class OAuthError(Exception):
    """An error response of the token endpoint (RFC 6749 §5.2): `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def client_credentials(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """The client id and secret of a token request (RFC 6749 §4.4.2, §2.3.1), which must ask for client credentials."""
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request", "Send the parameters as application/x-www-form-urlencoded.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "The body is not UTF-8.") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise OAuthError(400, "invalid_request", "A parameter is repeated.")
    if not form.get("grant_type"):
        raise OAuthError(400, "invalid_request", "grant_type is required.")
    if form["grant_type"] != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.")
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    in_form = "client_id" in form or "client_secret" in form
    if scheme.lower() == "basic":
        if in_form:
            raise OAuthError(400, "invalid_request", "Authenticate the client one way: HTTP Basic or form fields, not both.")
        try:
            client_id, colon, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "The Basic credentials are not base64 of `client_id:client_secret`.") from None
        if colon:
            return unquote_plus(client_id), unquote_plus(secret)
    elif form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    raise OAuthError(401, "invalid_client", "Authenticate the client: HTTP Basic, or client_id and client_secret form fields.")


async def authenticate(session: AsyncSession, client_id: str, secret: str) -> OAuthClient:
    client = await session.get(OAuthClient, client_id)
    # In a worker thread: scrypt takes tens of milliseconds (the first unknown id, twice that).
    matches = await asyncio.to_thread(lambda: secret_matches(secret, client.secret_hash if client else _unknown_client_hash()))
    if client is None or not matches:
        raise OAuthError(401, "invalid_client", "The client id or secret is wrong.")
    return client


@dataclass
class TokenIssuer:
    """Signs `sis` tokens with EZONE_OAUTH_SIGNING_KEY_FILE, under the key id the trusted JWKS gives its
    public key (looked up once, so a token never names a key the verifiers do not have)."""

    settings: Settings
    verifier: JwksVerifier
    _key: Any = None
    _kid: str | None = None

    async def _signing_key(self) -> tuple[Any, str]:
        if self._kid is None:
            path = self.settings.oauth_signing_key_path()
            if path is None:
                raise Problem(503, "This service issues no tokens: set EZONE_OAUTH_SIGNING_KEY_FILE to the PEM key that signs them.")
            try:
                key = serialization.load_pem_private_key(await asyncio.to_thread(Path(path).read_bytes), password=None)
            except (OSError, ValueError) as exc:
                raise Problem(503, f"The token signing key {path} cannot be read ({exc}).") from exc
            kid = await self.verifier.key_id_of(key.public_key())
            if kid is None:
                raise Problem(503, f"The public key of {path} is not in the JWKS the services trust ({self.settings.ezone_jwks_url}).")
            self._key, self._kid = key, kid
        return self._key, self._kid

    async def issue(self, client: OAuthClient) -> dict[str, Any]:
        key, kid = await self._signing_key()
        ttl = self.settings.ezone_oauth_token_ttl_s
        claims = token_claims(role="sis", zone=client.zone_id, schools=[str(s) for s in client.schools], subject=client.client_id,
                              ttl_seconds=ttl, audience=self.settings.ezone_jwt_audience,
                              issuer=self.settings.ezone_jwt_issuer or "ezone-results")
        return {"access_token": sign_token(key, kid, claims), "token_type": "bearer", "expires_in": ttl}

