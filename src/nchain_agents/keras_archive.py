"""Checking a ``.keras`` model file from a saved agent before Keras sees any of it.

A ``.keras`` file is itself a zip (``metadata.json``, ``config.json``,
``model.weights.h5``). Keras's own limits are far looser than what the keras-dqn network
can need, and it builds every layer a config declares (allocating its weights) before
any shape could be compared. So this module, which imports neither TensorFlow nor Keras:

1. reads the nested archive with the same bounded reader as the outer file: exactly
   those three members, each under a cap derived from the expected network;
2. parses ``config.json`` and checks it describes exactly the network the manifest
   promises (input size, two Dense layers of the expected units and activations, float32);
3. returns a fresh archive holding only those three members, which is what Keras loads
   (with ``safe_mode=True``).

Anything else raises :class:`~nchain_agents.errors.AgentFileError`.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from nchain_agents.archive import open_zip, parse_json, read_bounded
from nchain_agents.errors import AgentFileError

MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
MAX_METADATA_BYTES = 4 << 10
MAX_CONFIG_BYTES = 64 << 10
H5_OVERHEAD_BYTES = 256 << 10
"""HDF5 bookkeeping around the weights (about 12 KB for the tutorial's network)."""


def _dtype_name(dtype: Any) -> Any:
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def check_config(config: Any, n_states: int, n_actions: int, hidden_units: int) -> None:
    """Raise unless ``config`` is the keras-dqn network for these sizes."""
    want = f"Sequential(Input({n_states}), Dense({hidden_units}, sigmoid), Dense({n_actions}))"

    def fail(problem: str) -> AgentFileError:
        return AgentFileError(f"model config is not the keras-dqn network {want}: {problem}")

    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise fail("not a Sequential model")
    layers = (config.get("config") or {}).get("layers")
    if not isinstance(layers, list) or len(layers) != 3:
        raise fail("expected an input layer and two Dense layers")
    kinds = [layer.get("class_name") if isinstance(layer, dict) else None for layer in layers]
    if kinds != ["InputLayer", "Dense", "Dense"]:
        raise fail(f"layers are {kinds}")
    configs = [layer.get("config") for layer in layers]
    if not all(isinstance(c, dict) for c in configs):
        raise fail("a layer has no config")
    inputs, hidden, output = configs
    if inputs.get("batch_shape") != [None, n_states]:
        raise fail(f"input shape {inputs.get('batch_shape')!r}")
    for layer, units, activation in (
        (hidden, hidden_units, "sigmoid"),
        (output, n_actions, "linear"),
    ):
        if layer.get("units") != units or isinstance(layer.get("units"), bool):
            raise fail(f"a Dense layer has units {layer.get('units')!r}, expected {units}")
        if layer.get("activation") != activation:
            raise fail(f"activation {layer.get('activation')!r}, expected {activation!r}")
        if layer.get("use_bias") is not True:
            raise fail("Dense layers must use a bias")
    for layer in configs:
        if _dtype_name(layer.get("dtype", "float32")) != "float32":
            raise fail(f"dtype {_dtype_name(layer.get('dtype'))!r}, expected 'float32'")


def checked_model_bytes(
    data: bytes, n_states: int, n_actions: int, hidden_units: int, weights: int
) -> bytes:
    """Validate a ``.keras`` file for the keras-dqn network; return a clean copy of it.

    Raises:
        AgentFileError: naming what is wrong.
    """
    limits = {
        "metadata.json": MAX_METADATA_BYTES,
        "config.json": MAX_CONFIG_BYTES,
        "model.weights.h5": 4 * weights + H5_OVERHEAD_BYTES,
    }
    with open_zip(data, "model.keras") as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if sorted(names) != sorted(MEMBERS):
            raise AgentFileError(
                f"model.keras holds {names[:10]}, expected exactly {list(MEMBERS)}"
            )
        members = {
            info.filename: read_bounded(
                archive, info, limits[info.filename], f"model.keras member {info.filename!r}"
            )
            for info in infos
        }
    if not isinstance(parse_json(members["metadata.json"], "model metadata"), dict):
        raise AgentFileError("model metadata is not a JSON object")
    check_config(
        parse_json(members["config.json"], "model config"), n_states, n_actions, hidden_units
    )
    clean = io.BytesIO()
    with zipfile.ZipFile(clean, "w", compression=zipfile.ZIP_STORED) as out:
        for name in MEMBERS:
            out.writestr(name, members[name])
    return clean.getvalue()
