"""Staff token hashes: a well-known token's hash, a placeholder or a shared hash is refused
at start, naming the staff member; the shipped example is not a usable hash."""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from config.settings import DEFAULT_CONFIG, AlertSettings, load_settings
from config.tokens import WELL_KNOWN_HASHES
from le_intake.cli import main


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "token",
    ["", "test", "password", "changeme", "secret", "admin", "token", "1234", "Password",
     "test\n", "changeme\n", "\n"],
)  # fmt: skip
def test_well_known_token_hashes_are_refused_naming_the_staff_member(token: str) -> None:
    with pytest.raises(ValidationError) as info:
        AlertSettings(ack_tokens={"dana": sha(token)})
    message = str(info.value)
    assert "'dana'" in message
    assert "well-known" in message


def test_upper_case_hex_of_a_well_known_token_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="well-known"):
        AlertSettings(ack_tokens={"lee": sha("test").upper()})


@pytest.mark.parametrize("value", ["...", "not-a-hash", "9f86d081", sha("x") + "0", "g" * 64])
def test_a_value_that_is_not_a_sha256_hex_digest_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        AlertSettings(ack_tokens={"sam": value})
    assert "'sam'" in str(info.value)
    assert "not a sha256 hex digest" in str(info.value)


def test_two_staff_members_with_one_hash_are_refused() -> None:
    shared = sha(secrets.token_urlsafe(32))
    with pytest.raises(ValidationError) as info:
        AlertSettings(ack_tokens={"dana": shared, "lee": shared.upper()})
    assert "'dana'" in str(info.value)
    assert "'lee'" in str(info.value)


def test_a_random_tokens_hash_is_accepted_and_normalised() -> None:
    digest = sha(secrets.token_urlsafe(32))
    settings = AlertSettings(ack_tokens={"dana": f" {digest.upper()} "})
    assert settings.ack_tokens == {"dana": digest}


def test_the_shipped_example_is_not_a_usable_hash() -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    # No sha256 of a well-known token anywhere in the demo config, commented or not.
    assert not set(re.findall(r"\b[0-9a-fA-F]{64}\b", text)) & WELL_KNOWN_HASHES
    # The commented example, uncommented as an operator would, is refused at start.
    [line] = [ln for ln in text.splitlines() if re.match(r"#\s+dana\s*=", ln)]
    example = tomllib.loads(line.lstrip("# "))
    with pytest.raises(ValidationError, match="'dana'"):
        AlertSettings(ack_tokens=example)


def test_env_override_with_a_well_known_hash_is_refused(tmp_path: Path) -> None:
    env = {"LE_INTAKE_ALERTS__ACK_TOKENS": f'{{dana = "{sha("test")}"}}'}
    with pytest.raises(ValidationError, match="'dana'"):
        load_settings(environ=env)


def test_serve_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        "LE_INTAKE_DATA_DIR": str(tmp_path),
        "LE_INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "LE_INTAKE_SPOOL_DIR": str(tmp_path / "spool"),
        "LE_INTAKE_ALERTS__ACK_TOKENS": f'{{dana = "{sha("changeme")}"}}',
    }
    result = CliRunner().invoke(main, ["serve"], env=env)
    assert result.exit_code == 1
    assert "invalid configuration" in result.output
    assert "'dana'" in result.output
    assert "well-known" in result.output
    assert not (tmp_path / "cases.db").exists()  # refused before anything started
