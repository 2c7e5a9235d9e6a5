"""Shared fixtures: the repository's reference vectors (the ones the Rust tests reproduce)."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def reference_path(name):
    """`reference/<name>` of the repository, or of `INFOBOUND_REFERENCE_DIR` when set (as the
    Rust tests read it)."""
    folder = os.environ.get("INFOBOUND_REFERENCE_DIR")
    return (Path(folder) if folder else REPO / "reference") / name


@pytest.fixture(scope="session")
def disentanglement_reference():
    return json.loads(reference_path("disentanglement_metrics.json").read_text())


@pytest.fixture(scope="session")
def vendi_reference():
    return json.loads(reference_path("vendi.json").read_text())


@pytest.fixture(scope="session")
def sklearn_reference():
    path = REPO / "crates" / "infobound-metrics" / "reference" / "dci_explicitness_sklearn.json"
    return json.loads(path.read_text())
