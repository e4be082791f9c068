"""Settings and the default policy files shipped with le-intake."""

from config.settings import (
    LEPolicySettings,
    OutboxSettings,
    RunnerSettings,
    Settings,
    SmtpSettings,
    load_settings,
)

__all__ = [
    "LEPolicySettings",
    "OutboxSettings",
    "RunnerSettings",
    "Settings",
    "SmtpSettings",
    "load_settings",
]
