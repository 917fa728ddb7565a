"""fedsec.mpc."""
