"""Private set intersection between data holders (ECDH-PSI on X25519).

See :mod:`fedsec.psi.protocol` and ``docs/vertical.md``. Never imports Flower.
"""

from fedsec.psi.group import Exponentiator, hash_ids, new_key
from fedsec.psi.local import run_psi
from fedsec.psi.protocol import (
    OutputMode,
    PsiHolder,
    PsiResult,
    PsiTerms,
    TagMatch,
    check_ids,
    match_tags,
)

__all__ = [
    "Exponentiator",
    "OutputMode",
    "PsiHolder",
    "PsiResult",
    "PsiTerms",
    "TagMatch",
    "check_ids",
    "hash_ids",
    "match_tags",
    "new_key",
    "run_psi",
]
