"""le-intake: the intake desk for law-enforcement data requests (application wiring)."""

__version__ = "0.1.0"
