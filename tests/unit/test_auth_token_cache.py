"""The verifier keeps tokens it verified until they expire, so a client's every request does not pay for a signature check."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from ezone_kit import auth
from ezone_kit.auth import JwksVerifier
from ezone_kit.devkeys import ensure_dev_keys, mint_token
from ezone_kit.problems import Problem


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    ensure_dev_keys(tmp_path)
    return tmp_path


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    decode = jwt.decode

    def counting_decode(token: str, *args: object, **kwargs: object) -> dict:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counting_decode)
    return checked


def verifier(key_dir: Path, kept: int = auth.VERIFIED_TOKENS_KEPT) -> JwksVerifier:
    return JwksVerifier(str(key_dir / "jwks.json"), "ezone", verified_tokens_kept=kept)


async def test_a_token_sent_again_is_not_checked_again_and_names_the_same_principal(key_dir, signature_checks):
    token = mint_token(key_dir, role="sis", zone="z", schools=["s1"])
    tokens = verifier(key_dir)

    first, second = await tokens.verify(token), await tokens.verify(token)

    assert first == second and first.role == "sis" and first.schools == frozenset({"s1"})
    assert signature_checks == [token]


async def test_a_token_past_its_expiry_is_checked_every_time(key_dir, signature_checks):
    # Expired 5 s ago: still inside the verifier's 30 s leeway for clock skew, so it passes, but is never kept.
    token = mint_token(key_dir, role="admin", zone="z", ttl_seconds=-5)
    tokens = verifier(key_dir)

    for _ in range(2):
        assert (await tokens.verify(token)).role == "admin"
    assert signature_checks == [token, token]


async def test_a_kept_token_is_checked_again_once_its_expiry_passes(key_dir, signature_checks, monkeypatch):
    token = mint_token(key_dir, role="admin", zone="z", ttl_seconds=60)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    signature_checks.clear()
    tokens = verifier(key_dir)
    await tokens.verify(token)
    await tokens.verify(token)
    assert signature_checks == [token]

    monkeypatch.setattr(auth.time, "time", lambda: expires_at + 1.0)
    await tokens.verify(token)
    assert signature_checks == [token, token]


async def test_only_the_most_recently_used_tokens_are_kept(key_dir, signature_checks):
    first, second, third = (mint_token(key_dir, role="admin", zone=f"z{n}") for n in range(3))
    tokens = verifier(key_dir, kept=2)

    for token in (first, second, first, third, first, second):
        await tokens.verify(token)

    # `second` was the least recently used when `third` came, so it had to be checked again.
    assert signature_checks == [first, second, third, second]


async def test_a_refused_token_is_refused_every_time(key_dir, signature_checks):
    good = mint_token(key_dir, role="admin", zone="z")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    tokens = verifier(key_dir)

    for _ in range(2):
        with pytest.raises(Problem) as refused:
            await tokens.verify(forged)
        assert refused.value.status == 401
    assert signature_checks == [forged, forged]
