"""The message's road in: channels (SMTP), the durable spool, the runner, parsing and stripping."""
