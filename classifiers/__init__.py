"""The rules that decide (gate, emergency) and the extractors (identifiers)."""
