"""fedsec.crypto."""
