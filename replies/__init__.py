"""Automated responses to senders: composed from ``templates/``, delivered via the outbox.

Filled by [replies]; the road only guarantees that replay never sends to the network.
"""
