"""fedsec.secagg."""
