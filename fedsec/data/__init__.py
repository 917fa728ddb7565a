"""fedsec.data."""
