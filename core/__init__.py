"""The shared vocabulary of le-intake: what every layer speaks and none owns.

The clock, the envelope, the message context and its findings, verdicts and outcomes,
case statuses, and the address rules. It imports nothing of the project, so every other
package may import it (import-linter's ``core`` contract, in pyproject.toml).
"""
