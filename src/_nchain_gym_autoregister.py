"""Start-up hook of the nchain-rl distribution (loaded by ``nchain_rl_autoregister.pth``).

Registers ``NChain-v0`` the first time ``gymnasium`` is imported, by importing
``nchain_gym`` right after it, so that ``gym.make("NChain-v0")`` works in
projects that never import ``nchain_gym``. It imports neither gymnasium nor
numpy itself and costs a fraction of a millisecond at start-up. Set
``NCHAIN_GYM_NO_AUTOREGISTER=1`` to switch it off.
"""

import os
import sys

DISABLE_VAR = "NCHAIN_GYM_NO_AUTOREGISTER"


class _GymnasiumWatcher:
    """A ``sys.meta_path`` finder that only notices ``gymnasium`` being imported."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname != "gymnasium":
            return None
        from importlib.machinery import PathFinder

        _remove()
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is not None:
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        if spec is None:
            spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            import nchain_gym  # noqa: F401  (registers NChain-v0)
        except Exception as exc:  # never break the user's `import gymnasium`
            import warnings

            warnings.warn(f"nchain-rl could not register NChain-v0: {exc!r}", stacklevel=2)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _remove():
    if _GymnasiumWatcher in sys.meta_path:
        sys.meta_path.remove(_GymnasiumWatcher)


def install():
    """Watch for ``import gymnasium`` unless switched off or already imported."""
    if os.environ.get(DISABLE_VAR, "") not in ("", "0"):
        return
    if "gymnasium" in sys.modules or _GymnasiumWatcher in sys.meta_path:
        return
    sys.meta_path.insert(0, _GymnasiumWatcher)
