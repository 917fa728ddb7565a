"""fedsec: privacy-preserving federated learning on Flower.

The library layer: it knows nothing of Flower except ``fedsec.flower``.
"""

__version__ = "0.1.0"
