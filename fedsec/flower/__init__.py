"""fedsec.flower."""
