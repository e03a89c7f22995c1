"""The saved-agent file, agent-agnostic: one zip with a JSON manifest, arrays and files.

Layout (format version 1)::

    manifest.json              what is inside, validated before anything else is read
    arrays/<name>.npy          the agent's state arrays, read with allow_pickle=False
    arrays/history.<f>.npy     the training history (reward, length, epsilon)
    files/<name>               other payloads the agent declares (e.g. model.keras)

No pickle anywhere; entries are never extracted by their own names; every entry must be
declared in the manifest and stay under a size limit (:mod:`nchain_agents.limits`); the
file must be a regular file of bounded size. Whatever its bytes, :func:`read` returns
validated :class:`Contents` or raises :class:`AgentFileError`. Saving writes a temporary
file beside the target, fsyncs it and renames it over the target, so an interrupted
save leaves the previous file as it was.

This module knows nothing of agent classes: :class:`nchain_agents.Agent` turns itself
into :class:`Contents` and back through its public state API.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from nchain_agents import limits
from nchain_agents.errors import AgentFileError, AgentStateError, MissingExtraError, short_repr
from nchain_agents.limits import space_problem

FORMAT = "nchain-agent"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HISTORY_PREFIX = "history."
HISTORY_FIELDS = ("reward", "length", "epsilon")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

T = TypeVar("T")


@dataclass
class Contents:
    """What an agent file holds, validated as a container.

    Attributes:
        manifest: the JSON manifest (agent name, hyperparameters, spaces, training
            summary, generator state, ...).
        arrays: the agent's state arrays by name.
        files: the agent's opaque payloads by name.
        history: the training history's arrays (``reward``, ``length``, ``epsilon``).
    """

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)


def spaces_entry(spaces: tuple[int, int] | None) -> dict[str, Any]:
    """The manifest's ``spaces`` field for ``(n_states, n_actions)`` (or untrained)."""
    if spaces is None:
        return {"observation": None, "action": None}
    return {
        "observation": {"type": "Discrete", "n": int(spaces[0]), "start": 0},
        "action": {"type": "Discrete", "n": int(spaces[1]), "start": 0},
    }


def spaces_of(manifest: dict[str, Any]) -> tuple[int, int] | None:
    """``(n_states, n_actions)`` from a validated manifest, or ``None`` if untrained."""
    n_states = _space_n(manifest, "observation")
    n_actions = _space_n(manifest, "action")
    if n_states is None or n_actions is None:
        return None
    return n_states, n_actions


# -- writing ----------------------------------------------------------------------------------


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


STALE_AFTER_SECONDS = 24 * 3600


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files that earlier saves of ``path`` left behind when killed.

    A temporary file is named ``.<name>.<pid>.<random>.tmp``; it is stale when that
    process no longer runs (or, whatever the pid says, after a day). Another process
    saving the same file right now keeps its own.
    """
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    now = time.time()
    for candidate in candidates:
        middle = candidate.name[len(prefix) :]
        if not middle.endswith(".tmp"):
            continue
        pid_text = middle.split(".", 1)[0]
        try:
            stale = now - candidate.stat().st_mtime > STALE_AFTER_SECONDS
            if not stale and pid_text.isdigit():
                stale = not _process_alive(int(pid_text))
            if stale:
                candidate.unlink()
        except OSError:
            continue


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but not ours, or not a pid we can ask about
    return True


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
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
    _remove_stale_temporaries(path)
    mode = _target_mode(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
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


def write(path: str | Path, contents: Contents) -> Path:
    """Write an agent file atomically; ``.zip`` is added when the path has no suffix."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".zip")
    arrays = dict(contents.arrays)
    arrays.update({HISTORY_PREFIX + k: v for k, v in contents.history.items()})
    for name in [*arrays, *contents.files]:
        if not _NAME.match(name):
            raise AgentStateError(f"agent payload name {name!r} is not a plain file name")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **contents.manifest,
        "arrays": {
            name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()
        },
        "files": {name: {"size": len(data)} for name, data in contents.files.items()},
    }

    def write_zip(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as out:
            out.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                out.writestr(f"arrays/{name}.npy", buffer.getvalue())
            for name, data in contents.files.items():
                out.writestr(f"files/{name}", data)

    return atomic_write(path, write_zip)


# -- reading ----------------------------------------------------------------------------------


def read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str) -> bytes:
    """Read one zip member, refusing more than ``limit`` bytes whatever its header says.

    Raises:
        AgentFileError: too large, encrypted, an unknown compression method, or a size
            that does not match its header.
    """
    if info.file_size > limit:
        raise AgentFileError(f"{what} declares {info.file_size} bytes (limit {limit})")
    if info.flag_bits & 0x1:
        raise AgentFileError(f"{what} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise AgentFileError(f"{what} uses an unsupported compression method")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit or len(data) != info.file_size:
        raise AgentFileError(f"{what} does not have its declared size")
    return data


def json_depth(value: Any, level: int = 0) -> int:
    """Nesting depth of parsed JSON, counted no further than ``MAX_JSON_DEPTH + 1``."""
    if level > limits.MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, (dict, list)):
        return max((json_depth(v, level + 1) for v in children), default=level + 1)
    return level


def parse_json(data: bytes, what: str) -> Any:
    """Parse JSON from a file, refusing deep nesting; ``AgentFileError`` otherwise."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise AgentFileError(f"{what} is not valid JSON ({type(exc).__name__}: {exc})") from None
    if json_depth(value) > limits.MAX_JSON_DEPTH:
        raise AgentFileError(f"{what} is nested more than {limits.MAX_JSON_DEPTH} levels deep")
    return value


def _check_manifest(manifest: Any) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AgentFileError("not an nchain agent file (manifest has no 'format': 'nchain-agent')")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise AgentFileError(f"bad format_version {short_repr(version)} (expected an integer >= 1)")
    if version > FORMAT_VERSION:
        raise AgentFileError(
            f"file format version {version} is newer than this nchain-rl reads "
            f"(up to {FORMAT_VERSION}); upgrade nchain-rl to load it"
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
            raise AgentFileError(f"manifest field {key!r} is missing or not a {kind.__name__}")
    seed = manifest.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise AgentFileError(
            f"manifest field 'seed' must be a non-negative integer or null, got {short_repr(seed)}"
        )
    for name, value in manifest["hyperparameters"].items():
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise AgentFileError(
                f"hyperparameter {name!r} is not a plain value: {short_repr(value)}"
            )
    training = manifest.get("training", {})
    timesteps = training.get("timesteps", 0) if isinstance(training, dict) else None
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 0:
        raise AgentFileError(
            f"training timesteps must be an integer >= 0, got {short_repr(timesteps)}"
        )
    manifest["training"] = {**training, "timesteps": timesteps}
    rng_state = manifest.get("rng_state")
    if rng_state is not None and not isinstance(rng_state, dict):
        raise AgentFileError(f"rng_state must be an object, got {short_repr(rng_state)}")
    return manifest


def _space_n(manifest: dict, which: str) -> int | None:
    space = manifest["spaces"].get(which)
    if space is None:
        return None
    n = space.get("n") if isinstance(space, dict) else None
    if (
        not isinstance(space, dict)
        or space.get("type") != "Discrete"
        or isinstance(n, bool)
        or not isinstance(n, int)
        or space.get("start", 0) != 0
    ):
        raise AgentFileError(
            f"manifest {which} space {short_repr(space)} is not a Discrete space from 0"
        )
    return n


def _load_array(data: bytes, name: str, meta: Any) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise AgentFileError(f"array {name!r} cannot be read without pickle ({exc})") from None
    except Exception as exc:
        raise AgentFileError(f"array {name!r} is not a valid .npy file ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise AgentFileError(f"array {name!r} must hold plain numbers, got dtype {array.dtype}")
    if not isinstance(meta, dict) or list(array.shape) != meta.get("shape"):
        raise AgentFileError(
            f"array {name!r} has shape {array.shape}, manifest says {short_repr(meta)}"
        )
    return array


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file of bounded size (never a device, pipe or directory)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise AgentFileError("no such file") from None
    except IsADirectoryError:
        raise AgentFileError("is a directory, not an agent file") from None
    except OSError as exc:
        raise AgentFileError(f"cannot be opened ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise AgentFileError("is a directory, not an agent file")
        raise AgentFileError("is not a regular file (a device or a pipe?)")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limits.MAX_FILE_BYTES:
            raise AgentFileError(
                f"is {info.st_size} bytes; agent files are at most {limits.MAX_FILE_BYTES}"
            )
        data = handle.read(limits.MAX_FILE_BYTES + 1)
    if len(data) > limits.MAX_FILE_BYTES:
        raise AgentFileError(f"grew past {limits.MAX_FILE_BYTES} bytes while being read")
    return data


def history_problem(history: dict[str, np.ndarray]) -> str | None:
    """What is wrong with a training history's arrays, or ``None``."""
    if set(history) != set(HISTORY_FIELDS) or any(v.ndim != 1 for v in history.values()):
        return f"history arrays must be 1-D {list(HISTORY_FIELDS)}"
    if len({len(v) for v in history.values()}) != 1:
        return "history arrays have different lengths"
    if len(history["reward"]) > limits.MAX_HISTORY_EPISODES:
        return (
            f"the training history has {len(history['reward']):,} episodes; files keep at most "
            f"{limits.MAX_HISTORY_EPISODES:,}"
        )
    if history["reward"].dtype.kind not in "iuf" or not np.isfinite(history["reward"]).all():
        return "the training history holds non-finite episode rewards (did rewards overflow?)"
    if history["length"].dtype.kind not in "iu" or (history["length"] < 0).any():
        return "the training history holds negative episode lengths"
    epsilon = history["epsilon"].astype(np.float64)
    if ((epsilon < 0) | (epsilon > 1)).any():  # NaN is allowed: agents without epsilon
        return "the training history holds an epsilon outside [0, 1]"
    return None


def restoring(path: str | Path, build: Callable[[], T]) -> T:
    """Run ``build`` (which rebuilds an agent from a file's contents) so that whatever
    goes wrong is an :class:`AgentFileError` naming ``path``."""
    try:
        return build()
    except AgentFileError as exc:
        text = str(exc)
        raise AgentFileError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    except MissingExtraError:
        raise
    except Exception as exc:  # zlib.error, struct.error, OverflowError, MemoryError, ...
        raise AgentFileError(
            f"{path}: damaged or invalid agent file ({type(exc).__name__}: {short_repr(str(exc), 200)})"
        ) from None


def read(path: str | Path) -> Contents:
    """Read and validate an agent file as a container (see the module docstring).

    Raises:
        AgentFileError: for anything wrong with the file, whatever it is.
    """
    return restoring(path, lambda: _read(Path(path)))


def open_zip(data: bytes, what: str) -> zipfile.ZipFile:
    """A zip archive over ``data``, or an :class:`AgentFileError` saying ``what`` is not one."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise AgentFileError(f"{what} is not a zip archive, or is truncated ({exc})") from None


def _read(path: Path) -> Contents:
    with open_zip(_read_file(path), "the file") as archive:
        infos = archive.infolist()
        if len(infos) > 64:
            raise AgentFileError(f"archive has {len(infos)} entries; agent files have a few dozen")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise AgentFileError("duplicate entries in the archive")
        if MANIFEST not in names:
            raise AgentFileError("not an nchain agent file (no manifest.json)")
        if sum(info.file_size for info in infos) > limits.MAX_TOTAL_BYTES:
            raise AgentFileError(
                f"archive declares more than {limits.MAX_TOTAL_BYTES} bytes in total"
            )
        by_name = dict(zip(names, infos, strict=True))
        manifest = _check_manifest(
            parse_json(
                read_bounded(archive, by_name[MANIFEST], limits.MAX_MANIFEST_BYTES, MANIFEST),
                MANIFEST,
            )
        )
        for name in [*manifest["arrays"], *manifest["files"]]:
            if not isinstance(name, str) or not _NAME.match(name):
                raise AgentFileError(
                    f"manifest names an entry {short_repr(name)} that is not a plain file name"
                )
        declared = {f"arrays/{n}.npy" for n in manifest["arrays"]} | {
            f"files/{n}" for n in manifest["files"]
        }
        unexpected = sorted(set(names) - declared - {MANIFEST})
        if unexpected:
            raise AgentFileError(
                f"unexpected entries {unexpected[:5]} (not declared in the manifest)"
            )
        missing = sorted(declared - set(names))
        if missing:
            raise AgentFileError(f"entries {missing[:5]} are declared in the manifest but missing")
        spaces = spaces_of(manifest)
        if spaces is not None:
            problem = space_problem(*spaces)
            if problem is not None:
                raise AgentFileError(f"the manifest declares {problem}")
        arrays = {
            name: _load_array(
                read_bounded(
                    archive, by_name[f"arrays/{name}.npy"], limits.MAX_ENTRY_BYTES,
                    f"array {name!r}",
                ),
                name,
                meta,
            )
            for name, meta in manifest["arrays"].items()
        }  # fmt: skip
        files = {
            name: read_bounded(
                archive, by_name[f"files/{name}"], limits.MAX_ENTRY_BYTES, f"file {name!r}"
            )
            for name in manifest["files"]
        }
    history = {
        k[len(HISTORY_PREFIX) :]: v for k, v in arrays.items() if k.startswith(HISTORY_PREFIX)
    }
    state = {k: v for k, v in arrays.items() if not k.startswith(HISTORY_PREFIX)}
    problem = history_problem(history)
    if problem is not None:
        raise AgentFileError(problem)
    return Contents(manifest, state, files, history)
