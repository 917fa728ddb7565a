"""Attacks on fedsec played as a malicious server (or site) would play them."""
