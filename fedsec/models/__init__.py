"""fedsec.models."""
