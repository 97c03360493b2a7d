"""Development signing keys and tokens: what `ezone token` and `ezone up` use.

A production zone points EZONE_JWKS_URL at its identity provider instead; nothing here runs there.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .auth import sign_token, token_claims

PRIVATE_KEY_FILE = "dev-signing-key.pem"
JWKS_FILE = "jwks.json"
DEV_ISSUER = "ezone-dev"


def ensure_dev_keys(key_dir: Path) -> Path:
    """Create an ES256 key pair and its JWKS in `key_dir` unless they exist; return the JWKS path."""
    key_dir.mkdir(parents=True, exist_ok=True)
    private_path = key_dir / PRIVATE_KEY_FILE
    jwks_path = key_dir / JWKS_FILE
    if private_path.exists() and jwks_path.exists():
        return jwks_path
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private_path.chmod(0o600)
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public_jwk.update({"kid": uuid.uuid4().hex[:16], "use": "sig", "alg": "ES256"})
    jwks_path.write_text(json.dumps({"keys": [public_jwk]}, indent=2) + "\n")
    return jwks_path


def mint_token(
    key_dir: Path,
    *,
    role: str,
    zone: str,
    schools: list[str] | None = None,
    subject: str | None = None,
    ttl_seconds: int = 8 * 3600,
    audience: str = "ezone",
    issuer: str = DEV_ISSUER,
    partner_id: str | None = None,
) -> str:
    claims = token_claims(role=role, zone=zone, schools=schools, subject=subject or f"dev-{role}",
                          ttl_seconds=ttl_seconds, audience=audience, issuer=issuer, partner_id=partner_id)
    jwks_path = ensure_dev_keys(key_dir)
    kid = json.loads(jwks_path.read_text())["keys"][0]["kid"]
    private_key = serialization.load_pem_private_key((key_dir / PRIVATE_KEY_FILE).read_bytes(), password=None)
    return sign_token(private_key, kid, claims)
