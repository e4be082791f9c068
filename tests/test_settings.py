"""Settings: TOML file, LE_INTAKE_ environment overrides, and strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import DEFAULT_CONFIG, Settings, env_overrides, load_settings

BASE_TOML = """
log_level = "DEBUG"

[smtp]
port = 2525
request_addresses = ["LE@Example-Platform.com ", "inquiries@example-platform.com"]

[runner]
max_attempts = 4

[le_policy]
allowed_suffixes = ["GOV.", " mil ", ""]
allowed_domains = ["nypd.org"]
agency_words = ["fbi", "state police"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text(BASE_TOML, encoding="utf-8")
    return path


def test_reads_the_given_file(config_file: Path) -> None:
    settings = load_settings(config_file, environ={})
    assert settings.log_level == "DEBUG"
    assert settings.smtp.port == 2525
    assert settings.runner.max_attempts == 4
    # sections and keys the file leaves out keep their defaults
    assert settings.runner.workers == 1
    assert settings.outbox.transport == "folder"
    assert settings.extraction.default_region == "US"


def test_values_are_normalised(config_file: Path) -> None:
    settings = load_settings(str(config_file), environ={})
    assert settings.smtp.request_addresses == (
        "le@example-platform.com",
        "inquiries@example-platform.com",
    )
    assert settings.le_policy.allowed_suffixes == ("gov", "mil")
    assert settings.le_policy.agency_words == ("fbi", "state police")


def test_env_port_override_is_an_int(config_file: Path) -> None:
    settings = load_settings(config_file, environ={"LE_INTAKE_SMTP__PORT": "2600"})
    assert settings.smtp.port == 2600
    assert type(settings.smtp.port) is int


def test_env_overrides_of_several_types(config_file: Path) -> None:
    settings = load_settings(
        config_file,
        environ={
            "LE_INTAKE_RUNNER__WORKERS": "0",
            "LE_INTAKE_RUNNER__SCAN_INTERVAL_SECONDS": "0.5",
            "LE_INTAKE_SMTP__HOST": "0.0.0.0",  # not a TOML scalar: taken as a string
            "LE_INTAKE_SMTP__TLS_CERT_FILE": "/etc/le-intake/tls.crt",
            "LE_INTAKE_LOG_LEVEL": "WARNING",
            "HOME": "/root",  # not ours: ignored
        },
    )
    assert settings.runner.workers == 0
    assert settings.runner.scan_interval_seconds == 0.5
    assert settings.smtp.host == "0.0.0.0"
    assert settings.smtp.tls_cert_file == "/etc/le-intake/tls.crt"
    assert settings.log_level == "WARNING"
    assert settings.runner.max_attempts == 4  # untouched keys of an overridden section stay


def test_env_override_of_nested_array(config_file: Path) -> None:
    settings = load_settings(
        config_file,
        environ={
            "LE_INTAKE_LE_POLICY__ALLOWED_DOMAINS": '["nypd.org", "Sheriff.Example.US."]',
            "LE_INTAKE_SMTP__REQUEST_ADDRESSES": '["Requests@Example-Platform.com"]',
        },
    )
    assert settings.le_policy.allowed_domains == ("nypd.org", "sheriff.example.us")
    assert settings.le_policy.allowed_suffixes == ("gov", "mil")  # from the file
    assert settings.smtp.request_addresses == ("requests@example-platform.com",)


def test_env_overrides_tree() -> None:
    assert env_overrides(
        {
            "LE_INTAKE_SMTP__PORT": "2600",
            "LE_INTAKE_LE_POLICY__DENIED_DOMAINS": '["old.gov"]',
            "LE_INTAKE_RUNNER__WORKERS": "2",
            "LE_INTAKE_CONFIG": "/somewhere.toml",
            "LE_INTAKE_": "ignored",
            "PATH": "/usr/bin",
        }
    ) == {
        # scalars stay text (pydantic coerces them by field type); arrays are TOML
        "smtp": {"port": "2600"},
        "le_policy": {"denied_domains": ["old.gov"]},
        "runner": {"workers": "2"},
    }


def test_conflicting_env_variables_are_refused(config_file: Path) -> None:
    with pytest.raises(ValueError, match="conflicts"):
        load_settings(config_file, environ={"LE_INTAKE_SMTP": "1", "LE_INTAKE_SMTP__PORT": "2"})


@pytest.mark.parametrize(
    ("environ", "location"),
    [
        ({"LE_INTAKE_SMTP__BOGUS": "1"}, ("smtp", "bogus")),
        ({"LE_INTAKE_NOPE": "1"}, ("nope",)),
        ({"LE_INTAKE_LE_POLICY__ALLOWED_TLDS": '["gov"]'}, ("le_policy", "allowed_tlds")),
    ],
)
def test_unknown_env_keys_are_rejected(
    config_file: Path, environ: dict[str, str], location: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        load_settings(config_file, environ=environ)
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == location


@pytest.mark.parametrize(
    ("toml", "location"),
    [
        ("unknown_top = 1\n", ("unknown_top",)),
        ("[smtp]\nprot = 25\n", ("smtp", "prot")),
        ("[nosuchsection]\nx = 1\n", ("nosuchsection",)),
    ],
)
def test_unknown_file_keys_are_rejected(
    tmp_path: Path, toml: str, location: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_settings(path, environ={})
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == location


def test_wrongly_typed_override_is_rejected(config_file: Path) -> None:
    with pytest.raises(ValidationError) as info:
        load_settings(config_file, environ={"LE_INTAKE_SMTP__PORT": "abc"})
    assert info.value.errors()[0]["loc"] == ("smtp", "port")


def test_settings_are_frozen(config_file: Path) -> None:
    settings = load_settings(config_file, environ={})
    with pytest.raises(ValidationError):
        settings.smtp.port = 1


def test_le_intake_config_selects_the_file(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[smtp]\nport = 2700\n", encoding="utf-8")
    settings = load_settings(environ={"LE_INTAKE_CONFIG": str(chosen)})
    assert settings.smtp.port == 2700
    # the file's section replaces only the keys it names
    assert settings.smtp.hostname == "le-intake.local"


def test_explicit_path_wins_over_le_intake_config(config_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[smtp]\nport = 2700\n", encoding="utf-8")
    settings = load_settings(config_file, environ={"LE_INTAKE_CONFIG": str(other)})
    assert settings.smtp.port == 2525


def test_env_override_applies_on_top_of_le_intake_config(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[smtp]\nport = 2700\n", encoding="utf-8")
    settings = load_settings(
        environ={"LE_INTAKE_CONFIG": str(chosen), "LE_INTAKE_SMTP__PORT": "2800"}
    )
    assert settings.smtp.port == 2800


def test_missing_config_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(environ={"LE_INTAKE_CONFIG": str(tmp_path / "absent.toml")})


def test_default_file_is_the_demo_configuration() -> None:
    settings = load_settings(environ={})
    assert isinstance(settings, Settings)
    assert DEFAULT_CONFIG.name == "default.toml"
    assert settings.smtp.port == 2525
    assert settings.smtp.request_addresses == (
        "lawenforcement@example-platform.com",
        "inquiries@example-platform.com",
    )
    assert "gov" in settings.le_policy.allowed_suffixes
    assert "police.uk" in settings.le_policy.allowed_suffixes
    assert "nypd.org" in settings.le_policy.allowed_domains


def test_text_setting_that_looks_like_a_number_keeps_its_text(config_file: Path) -> None:
    settings = load_settings(
        config_file, environ={"LE_INTAKE_SMTP__HOSTNAME": "2600", "LE_INTAKE_LOG_LEVEL": "true"}
    )
    assert settings.smtp.hostname == "2600"
    assert settings.log_level == "true"
