"""Bearer-token authentication: JWTs verified against a JWKS, bound to one zone (and schools).

Roles: sis, school, board, district, admin, partner. `school` and `sis` tokens carry the list of
schools they act for; a `partner` token carries the partner organisation it acts for (`partner_id`)
and acts for no school; every other role sees its whole zone and nothing outside it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request

from .problems import Problem

# `state`: the deployment's, not a zone's: it loads statewide files (every school of the state, any zone's).
ROLES = ("sis", "school", "board", "district", "admin", "partner", "state")
SCHOOL_BOUND_ROLES = frozenset({"sis", "school"})
PARTNER_ROLE = "partner"
ALGORITHMS = ["RS256", "ES256"]
# Tokens verified recently, kept until they expire: a client sends the same token with every request,
# and an ES256 check costs more than the rest of a small request's authentication.
VERIFIED_TOKENS_KEPT = 1024


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    zone: str
    schools: frozenset[str]
    token_id: str | None = None
    partner_id: str | None = None  # only on partner tokens: the organisation whose orders they see

    def may_act_for_school(self, school_id: object) -> bool:
        # A partner sees what concerns its own services, never a school's data as such.
        if self.role == PARTNER_ROLE:
            return False
        return self.role not in SCHOOL_BOUND_ROLES or str(school_id) in self.schools


def token_claims(
    *, role: str, zone: str, schools: list[str] | None, subject: str, ttl_seconds: int, audience: str, issuer: str,
    partner_id: str | None = None,
) -> dict[str, Any]:
    """The claims every ezone token carries: what `verify` below reads back into a Principal."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if (role == PARTNER_ROLE) != (partner_id is not None):
        raise ValueError("a partner token, and only a partner token, names its partner_id")
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now, "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex, "role": role, "zone": zone, "schools": list(schools or []),
    }
    if partner_id is not None:
        claims["partner_id"] = str(partner_id)
    return claims


def sign_token(private_key: Any, kid: str, claims: dict[str, Any]) -> str:
    """Sign claims with a private key (a `cryptography` EC P-256 or RSA key) the JWKS publishes under `kid`."""
    algorithm = "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid})


def _unauthorized(detail: str, *, credentials_sent: bool = True) -> Problem:
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    challenge = 'Bearer error="invalid_token"' if credentials_sent else "Bearer"
    return Problem(401, detail, type="https://ezone.dev/problems/unauthorized", headers={"WWW-Authenticate": challenge})


class JwksVerifier:
    """Verifies tokens against a JWKS read from a file or fetched from a URL (refetched on an unknown key id)."""

    def __init__(self, jwks_url: str, audience: str, issuer: str | None = None,
                 verified_tokens_kept: int = VERIFIED_TOKENS_KEPT) -> None:
        self._source = jwks_url
        self._audience = audience
        self._issuer = issuer
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = asyncio.Lock()
        # raw token -> (its principal, its `exp`), least recently used first
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._verified_kept = verified_tokens_kept

    async def _load(self) -> None:
        if self._source.startswith(("http://", "https://")):
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self._source)
                response.raise_for_status()
                document: dict[str, Any] = response.json()
        else:
            path = Path(self._source.removeprefix("file://"))
            document = json.loads(await asyncio.to_thread(path.read_text))
        key_set = jwt.PyJWKSet.from_dict(document)
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            async with self._lock:
                if kid not in self._keys:
                    try:
                        await self._load()
                    except (OSError, httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                        raise Problem(503, f"The token keys at {self._source} cannot be read ({exc}); check EZONE_JWKS_URL.") from exc
        if kid not in self._keys:
            raise _unauthorized("The token was signed by a key this zone does not trust.")
        return self._keys[kid]

    async def key_id_of(self, public_key: Any) -> str | None:
        """The `kid` under which the JWKS (read afresh) publishes `public_key`, if it does: how a token
        issuer in this service finds the key id the verifiers will look its tokens up by."""
        async with self._lock:
            await self._load()
        numbers = public_key.public_numbers()
        return next(
            (kid for kid, jwk in self._keys.items() if getattr(jwk.key, "public_numbers", lambda: None)() == numbers), None
        )

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token. A token verified before answers from memory until its `exp`
        (never longer: the leeway below is only for clock skew at the first check)."""
        if (known := self._verified.get(token)) is not None:
            principal, expires_at = known
            if time.time() < expires_at:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires_at = await self._verify_signed(token)
        self._verified[token] = (principal, expires_at)
        if len(self._verified) > self._verified_kept:
            self._verified.popitem(last=False)
        return principal

    async def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _unauthorized("The bearer token is not a well-formed JWT.") from None
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "aud", "sub"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("The bearer token has expired; get a new one.") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(f"The bearer token is not meant for this API (audience must be {self._audience!r}).") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("The bearer token's signature does not verify.") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"The bearer token is not valid: {exc}.") from None
        role, zone = claims.get("role"), claims.get("zone")
        if role not in ROLES or not isinstance(zone, str) or not zone:
            raise _unauthorized("The bearer token must carry a `role` (one of " + ", ".join(ROLES) + ") and a `zone`.")
        schools = claims.get("schools") or []
        if not isinstance(schools, list) or (role in SCHOOL_BOUND_ROLES and not schools):
            raise _unauthorized(f"A {role} token must list the schools it acts for in `schools`.")
        partner_id = claims.get("partner_id")
        if role == PARTNER_ROLE and not (isinstance(partner_id, str) and partner_id):
            raise _unauthorized("A partner token must name the partner organisation it acts for in `partner_id`.")
        principal = Principal(subject=str(claims["sub"]), role=role, zone=zone, schools=frozenset(map(str, schools)),
                              token_id=claims.get("jti"), partner_id=partner_id if role == PARTNER_ROLE else None)
        return principal, float(claims["exp"])


async def current_principal(request: Request) -> Principal:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "This API needs a bearer token: send `Authorization: Bearer <JWT>` (locally, `ezone token`).",
            credentials_sent=bool(authorization),
        )
    verifier: JwksVerifier = request.app.state.kit.verifier
    principal = await verifier.verify(token.strip())
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str):
    """A dependency that admits only the given roles (403 names the roles that may)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Problem(403, f"This action needs one of the roles {', '.join(roles)}; your token's role is {principal.role}.")
        return principal

    return dependency


def ensure_zone(principal: Principal, zone_id: str) -> None:
    """Another zone's resources do not exist for this caller: 404, so nothing leaks."""
    if principal.zone != zone_id:
        raise Problem(404, f"Zone {zone_id!r} was not found.")


def ensure_school(principal: Principal, zone_id: str, school_id: object) -> None:
    ensure_zone(principal, zone_id)
    if not principal.may_act_for_school(school_id):
        raise Problem(403, "Your token does not act for this school; ask for a token that lists it.")
