"""The ``fedsec`` command: provision, check, watch and maintain a federation."""
