"""fedsec.dp."""
