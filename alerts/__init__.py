"""Paging on-call staff about emergencies: what an alert says, where it goes, escalation."""
