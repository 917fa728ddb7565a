"""No DP noise or rounding coin comes from numpy's, Python's or torch's generators.

Two complementary checks: (1) with every entry point of those generators
patched to raise, the samplers, the distributed pipeline and central DP still
work, so they cannot be using them; (2) a scan of ``fedsec/dp``'s source finds
no reference to them at all. ``opacus_glue`` replaces Opacus's DP-SGD noise
with draws from ``CryptoRandom`` too (``tests/dp/test_opacus_glue.py`` trains
with ``torch.normal`` patched to raise); Opacus's Poisson sampler still calls
``torch.rand``, on a ``torch.Generator`` seeded with 64 bits of that source.
"""

from __future__ import annotations

import ast
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from fedsec.dp import samplers
from fedsec.dp.central import central_aggregate
from fedsec.dp.distributed import DistributedDPParams, decode, encode, ring_sum
from fedsec.dp.rotation import rotate, unrotate
from fedsec.dp.source import CryptoRandom

DP_SOURCE = Path(__file__).resolve().parents[2] / "fedsec" / "dp"

NUMPY_NAMES = [
    "default_rng", "Generator", "RandomState", "seed", "random", "rand", "randn",
    "randint", "random_sample", "normal", "standard_normal", "laplace", "poisson",
    "uniform", "choice", "permutation", "shuffle", "binomial", "geometric",
]  # fmt: skip
PYTHON_NAMES = [
    "random", "randint", "randrange", "getrandbits", "gauss", "normalvariate",
    "uniform", "choice", "choices", "shuffle", "sample", "Random", "seed",
]  # fmt: skip
TORCH_NAMES = ["rand", "randn", "randint", "normal", "poisson", "bernoulli", "randperm"]


@pytest.fixture
def weak_rngs_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a non-cryptographic generator was used")

    for module, names in (
        (np.random, NUMPY_NAMES),
        (random, PYTHON_NAMES),
        (torch, TORCH_NAMES),
    ):
        for name in names:
            monkeypatch.setattr(module, name, forbidden)


def test_patch_is_effective(weak_rngs_forbidden: None) -> None:
    with pytest.raises(AssertionError):
        np.random.default_rng()
    with pytest.raises(AssertionError):
        random.random()
    with pytest.raises(AssertionError):
        torch.randn(3)


@pytest.mark.usefixtures("weak_rngs_forbidden")
def test_samplers_work_without_weak_generators() -> None:
    rng = CryptoRandom()
    assert samplers.discrete_gaussian(3.0, 1000, rng).shape == (1000,)
    assert samplers.discrete_laplace(2.0, 1000, rng).shape == (1000,)
    assert samplers.poisson(5.0, 1000, rng).shape == (1000,)
    assert samplers.poisson(5e6, 1000, rng).shape == (1000,)
    assert samplers.skellam(1e4, 1000, rng).shape == (1000,)
    assert samplers.gaussian(1.0, 1000, rng).shape == (1000,)


@pytest.mark.usefixtures("weak_rngs_forbidden")
@pytest.mark.parametrize("mechanism", ["discrete_gaussian", "skellam"])
def test_pipelines_work_without_weak_generators(mechanism: str) -> None:
    p = DistributedDPParams(
        dim=100,
        clip_norm=1.0,
        noise_multiplier=1.0,
        num_clients=3,
        min_survivors=2,
        mechanism=mechanism,  # type: ignore[arg-type]
    )
    seed = os.urandom(32)
    enc = np.stack([encode(np.full(100, 0.01), p, seed) for _ in range(3)])
    assert decode(ring_sum(enc, p.ring_bits), p, seed, 3.0).shape == (100,)
    assert unrotate(rotate(np.ones(5), seed), seed, 5).shape == (5,)
    out = central_aggregate(np.ones((3, 4)), clip_norm=1.0, noise_multiplier=1.0)
    assert out.shape == (4,)


def test_unseeded_key_comes_from_os_urandom(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(100, 132))
    monkeypatch.setattr(os, "urandom", lambda n: key[:n])
    assert np.array_equal(CryptoRandom().uint64(4), CryptoRandom(key).uint64(4))


def _weak_references(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "random"]
            found += [a.name for a in node.names if a.name == "numpy.random"]
        elif isinstance(node, ast.ImportFrom) and node.module in {
            "random",
            "numpy.random",
            "torch.random",
        }:
            found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy":
            found += [a.name for a in node.names if a.name == "random"]
        elif isinstance(node, ast.Attribute):
            if (
                node.attr == "random"
                and isinstance(node.value, ast.Name)
                and node.value.id in {"np", "numpy", "torch"}
            ):
                found.append(f"{node.value.id}.random")
            if (
                isinstance(node.value, ast.Name)
                and node.value.id == "torch"
                and node.attr in TORCH_NAMES
            ):
                found.append(f"torch.{node.attr}")
    return found


def test_source_scan_finds_no_weak_generator() -> None:
    files = sorted(DP_SOURCE.glob("*.py"))
    assert len(files) >= 8
    offenders = {f.name: refs for f in files if (refs := _weak_references(f))}
    assert offenders == {}


def test_source_scan_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import random\nimport numpy as np\nx = np.random.normal()\n"
        "from numpy.random import default_rng\nimport torch\ny = torch.randn(2)\n"
    )
    assert set(_weak_references(bad)) == {
        "random",
        "np.random",
        "numpy.random",
        "torch.randn",
    }
