"""The saved-agent file: one zip with a JSON manifest, ``.npy`` arrays and opaque files.

Layout (format version 1)::

    manifest.json          what is inside, validated before anything else is read
    arrays/<name>.npy      NumPy arrays, read with allow_pickle=False
    files/<name>           other payloads the agent declares (e.g. model.keras)

No pickle anywhere; entries are never extracted by their own names; every entry
must be declared in the manifest and stay under a size limit. Saving writes a
temporary file beside the target, fsyncs it and renames it over the target, so an
interrupted save leaves the previous file as it was.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from nchain_agents.errors import (
    AgentFileError,
    HyperparameterError,
    MissingExtraError,
    UnknownAgentError,
)

if TYPE_CHECKING:
    from nchain_agents.base import Agent

FORMAT = "nchain-agent"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
MAX_ENTRY_BYTES = 256 << 20
MAX_TOTAL_BYTES = 1 << 30
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
HISTORY_PREFIX = "history."


def _fail(path: Path, problem: str) -> AgentFileError:
    return AgentFileError(f"{path}: {problem}")


# -- saving ---------------------------------------------------------------------------


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # the portable way sets it and sets it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The mode the written file gets: the replaced file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(handle)`` so that readers see the old or the new file.

    The data goes to a temporary file in the same directory, is flushed to disk and
    renamed over ``path``; on any error (or Ctrl-C) the temporary file is removed and
    ``path`` is left as it was. A new file gets the mode ``open()`` would give it
    (0666 less the umask); a replaced file keeps its mode. A path that is a device or
    a pipe (``/dev/stdout``, ``/dev/null``) is written into directly, never replaced.
    """
    path = Path(path)
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO): write into it as it is;
        # renaming a file over it would replace the device itself.
        with open(path, "wb") as handle:
            write(handle)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _target_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _jsonable_space(n: int | None) -> dict[str, Any] | None:
    return None if n is None else {"type": "Discrete", "n": int(n), "start": 0}


def build_manifest(agent: Agent, arrays: dict[str, np.ndarray], files: dict[str, bytes]) -> dict:
    from nchain_agents.registry import default_registry

    info = default_registry().info_for_class(type(agent))
    history = agent.history
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "agent": info.name,
        "distribution": info.distribution,
        "distribution_version": info.version,
        "class": f"{type(agent).__module__}.{type(agent).__qualname__}",
        "seed": agent.seed,
        "hyperparameters": agent.get_hyperparameters(),
        "spaces": {
            "observation": _jsonable_space(agent.n_states),
            "action": _jsonable_space(agent.n_actions),
        },
        "training": {
            "episodes": len(history),
            "timesteps": int(agent.num_timesteps),
            "last_mean_reward_per_step": (float(history.mean_reward[-1]) if len(history) else None),
        },
        "rng_state": agent._rng.bit_generator.state,
        "arrays": {
            name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()
        },
        "files": {name: {"size": len(data)} for name, data in files.items()},
    }


def save_agent(agent: Agent, path: str | Path) -> Path:
    """Write ``agent`` to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".zip")
    arrays: dict[str, np.ndarray] = {}
    if agent.is_trained:
        arrays.update(agent._state_arrays())
    arrays.update({HISTORY_PREFIX + k: v for k, v in agent.history.to_arrays().items()})
    files = agent._state_files() if agent.is_trained else {}
    for name in [*arrays, *files]:
        if not _NAME.match(name):
            raise ValueError(f"agent payload name {name!r} is not a plain file name")
    manifest = build_manifest(agent, arrays, files)

    def write(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                archive.writestr(f"arrays/{name}.npy", buffer.getvalue())
            for name, data in files.items():
                archive.writestr(f"files/{name}", data)

    atomic_write(path, write)
    return path


# -- loading --------------------------------------------------------------------------


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Path) -> bytes:
    if info.file_size > limit:
        raise _fail(
            path, f"entry {info.filename!r} declares {info.file_size} bytes (limit {limit})"
        )
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _fail(path, f"entry {info.filename!r} is larger than its declared size")
    return data


def _check_manifest(manifest: Any, path: Path) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(path, "not an nchain agent file (manifest has no 'format': 'nchain-agent')")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(path, f"bad format_version {version!r} (expected an integer >= 1)")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"file format version {version} is newer than this nchain-rl reads "
            f"(up to {FORMAT_VERSION}); upgrade nchain-rl to load it",
        )
    expected_types = {
        "agent": str,
        "hyperparameters": dict,
        "spaces": dict,
        "arrays": dict,
        "files": dict,
    }
    for key, kind in expected_types.items():
        if not isinstance(manifest.get(key), kind):
            raise _fail(path, f"manifest field {key!r} is missing or not a {kind.__name__}")
    seed = manifest.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _fail(path, f"manifest field 'seed' must be an integer or null, got {seed!r}")
    return manifest


def _space_n(manifest: dict, which: str, path: Path) -> int | None:
    space = manifest["spaces"].get(which)
    if space is None:
        return None
    n = space.get("n") if isinstance(space, dict) else None
    if (
        not isinstance(space, dict)
        or space.get("type") != "Discrete"
        or isinstance(n, bool)
        or not isinstance(n, int)
        or not 1 <= n <= 1_000_000
        or space.get("start", 0) != 0
    ):
        raise _fail(path, f"manifest {which} space {space!r} is not a Discrete space from 0")
    return n


def _resolve_class(manifest: dict, path: Path) -> type[Agent]:
    from nchain_agents.registry import default_registry

    name = manifest["agent"]
    try:
        return default_registry().get(name).agent_class
    except UnknownAgentError:
        dist = manifest.get("distribution")
        version = manifest.get("distribution_version")
        source = " ".join(str(x) for x in (dist, version) if x) or "an unknown distribution"
        if dist and dist in default_registry().excluded():
            from nchain_agents.registry import PLUGINS_ENV_VAR

            raise _fail(
                path,
                f"agent {name!r} comes from {dist}, which is installed but not loaded: "
                f"{PLUGINS_ENV_VAR}={os.environ.get(PLUGINS_ENV_VAR, '')!r} excludes it "
                f"(add {dist} to that list, or unset it)",
            ) from None
        hint = f"; install the plugin that provides it: pip install {dist}" if dist else ""
        raise _fail(path, f"agent {name!r} (from {source}) is not installed{hint}") from None


def _load_array(data: bytes, name: str, meta: Any, path: Path) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise _fail(path, f"array {name!r} cannot be read without pickle ({exc})") from None
    except Exception as exc:
        raise _fail(path, f"array {name!r} is not a valid .npy file ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise _fail(path, f"array {name!r} must hold plain numbers, got dtype {array.dtype}")
    if not isinstance(meta, dict) or list(array.shape) != meta.get("shape"):
        raise _fail(path, f"array {name!r} has shape {array.shape}, manifest says {meta!r}")
    return array


def load_agent_file(path: str | Path, expected: type[Agent] | None = None) -> Agent:
    """Read, validate and rebuild a saved agent (see the module docstring)."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory, not an agent file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(path, f"not a zip archive, or truncated ({exc})") from None
    with archive:
        try:
            return _load_from_archive(archive, path, expected)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
            raise _fail(path, f"damaged zip archive ({exc})") from None


def _load_from_archive(archive: zipfile.ZipFile, path: Path, expected: type[Agent] | None) -> Agent:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _fail(path, "duplicate entries in the archive")
    if MANIFEST not in names:
        raise _fail(path, "not an nchain agent file (no manifest.json)")
    if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
        raise _fail(path, f"archive declares more than {MAX_TOTAL_BYTES} bytes in total")
    by_name = dict(zip(names, infos, strict=True))
    try:
        manifest = json.loads(_read_entry(archive, by_name[MANIFEST], MAX_MANIFEST_BYTES, path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"manifest.json is not valid JSON ({exc})") from None
    manifest = _check_manifest(manifest, path)

    declared = {f"arrays/{n}.npy" for n in manifest["arrays"]} | {
        f"files/{n}" for n in manifest["files"]
    }
    for name in [*manifest["arrays"], *manifest["files"]]:
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(path, f"manifest names an entry {name!r} that is not a plain file name")
    unexpected = sorted(set(names) - declared - {MANIFEST})
    if unexpected:
        raise _fail(path, f"unexpected entries {unexpected} (not declared in the manifest)")
    missing = sorted(declared - set(names))
    if missing:
        raise _fail(path, f"entries {missing} are declared in the manifest but missing")

    cls = _resolve_class(manifest, path)
    if expected is not None and not issubclass(cls, expected):
        raise _fail(path, f"holds a {manifest['agent']!r} agent, not a {expected.__name__}")
    try:
        agent = cls(seed=manifest.get("seed"), **manifest["hyperparameters"])
    except (HyperparameterError, TypeError) as exc:
        raise _fail(path, f"hyperparameters do not fit {manifest['agent']!r}: {exc}") from None

    arrays = {
        name: _load_array(
            _read_entry(archive, by_name[f"arrays/{name}.npy"], MAX_ENTRY_BYTES, path),
            name,
            meta,
            path,
        )
        for name, meta in manifest["arrays"].items()
    }
    files = {
        name: _read_entry(archive, by_name[f"files/{name}"], MAX_ENTRY_BYTES, path)
        for name in manifest["files"]
    }
    _restore(agent, manifest, arrays, files, path)
    return agent


def _restore(
    agent: Agent, manifest: dict, arrays: dict, files: dict[str, bytes], path: Path
) -> None:
    from nchain_agents.base import History

    history = {
        k[len(HISTORY_PREFIX) :]: v for k, v in arrays.items() if k.startswith(HISTORY_PREFIX)
    }
    state = {k: v for k, v in arrays.items() if not k.startswith(HISTORY_PREFIX)}
    if set(history) != set(History.FIELDS) or any(v.ndim != 1 for v in history.values()):
        raise _fail(path, f"history arrays must be 1-D {list(History.FIELDS)}")
    if len({len(v) for v in history.values()}) != 1:
        raise _fail(path, "history arrays have different lengths")
    agent.history = History.from_arrays(history)
    if any(not math.isfinite(x) for x in agent.history.reward):
        raise _fail(path, "history holds non-finite rewards")

    training = manifest.get("training", {})
    timesteps = training.get("timesteps", 0) if isinstance(training, dict) else 0
    agent.num_timesteps = timesteps if isinstance(timesteps, int) and timesteps >= 0 else 0

    n_states = _space_n(manifest, "observation", path)
    n_actions = _space_n(manifest, "action", path)
    if n_states is None or n_actions is None:
        if state or files:
            raise _fail(path, "an untrained agent must not carry learned state")
    else:
        _restore_learned(agent, n_states, n_actions, state, files, path)
    # Last, so that nothing above (building a model, say) moves the restored stream.
    rng_state = manifest.get("rng_state")
    if rng_state is not None:
        try:
            agent._rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise _fail(path, f"rng_state does not fit the agent's generator ({exc})") from None


def _restore_learned(
    agent: Agent, n_states: int, n_actions: int, state: dict, files: dict, path: Path
) -> None:
    agent._bind_spaces(n_states, n_actions)
    wanted = agent._expected_arrays()
    if set(state) != set(wanted):
        raise _fail(path, f"arrays {sorted(state)} do not match the agent's {sorted(wanted)}")
    for name, (shape, kinds) in wanted.items():
        if state[name].shape != shape or state[name].dtype.kind not in kinds:
            raise _fail(
                path,
                f"array {name!r} has shape {state[name].shape} and dtype {state[name].dtype}; "
                f"expected shape {shape} for the saved spaces",
            )
    agent._restore_arrays(state)
    try:
        agent._restore_files(files)
    except (AgentFileError, MissingExtraError):
        raise
    except Exception as exc:
        raise _fail(path, f"stored model cannot be loaded ({exc})") from None
