"""Import a library while deferring the imports it makes for features proto-index never uses.

laion_clap imports, at the top of its modules, what its training and its other towers need:
scikit-learn (its loss), torchvision (a batch-norm helper, image datasets), pandas, webdataset,
h5py, wget, and transformers' BERT/RoBERTa/BART models and tokenizers (three tokenizers are even
loaded at import). That is about half of a ``classify`` start-up. Inside :func:`deferring`, those
packages are not imported: each import of one gets a :class:`StandIn` module, and what is taken from
it (a class, a function, the result of calling one) is a :class:`Deferred` that imports the real
package and does the real thing on first use. So behaviour is laion_clap's own, only later: the
fusion path's torchaudio and torchvision transforms, or ``BertModel``, work when reached.

Only packages not yet imported are deferred, and only while :func:`deferring` runs; afterwards an
import of them is an ordinary import. Limits: a deferred class cannot be subclassed or used in
``isinstance`` inside the deferring block (laion_clap does neither at import), and another thread
importing one of these packages during the block gets a stand-in too (its first use waits for the
block to end, then forwards to the real package).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from typing import Any, Callable, Iterator

LAION_TRAINING_IMPORTS = ("sklearn", "torchvision", "pandas", "webdataset", "h5py", "wget", "braceexpand",
                          "PIL", "transformers", "torchaudio", "tqdm")
"""What laion_clap imports at module level for training, image code or towers that are not built."""

_lock = threading.RLock()
_active = threading.local()


def _deferring_now() -> bool:
    return getattr(_active, "depth", 0) > 0


def _attribute(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        if isinstance(obj, types.ModuleType):  # a submodule its package does not import itself
            return importlib.import_module(f"{obj.__name__}.{name}")
        raise


class Deferred:
    """Something taken from a deferred module (an attribute, or the result of calling one), made
    real on first use outside :func:`deferring`."""

    __slots__ = ("_make", "_label", "_value")

    def __init__(self, make: Callable[[], Any], label: str):
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_label", label)

    def _real(self) -> Any:
        with _lock:  # a deferred call runs once
            try:
                return object.__getattribute__(self, "_value")
            except AttributeError:
                value = object.__getattribute__(self, "_make")()
                object.__setattr__(self, "_value", value)
                return value

    def __getattr__(self, name: str) -> Any:
        if _deferring_now():
            if name.startswith("__"):
                raise AttributeError(name)
            return Deferred(lambda: _attribute(self._real(), name), f"{self._label}.{name}")
        return getattr(self._real(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _deferring_now():
            return Deferred(lambda: self._real()(*args, **kwargs), f"{self._label}()")
        return self._real()(*args, **kwargs)

    # the protocols Python looks up on the type, forwarded to the real object
    def __getitem__(self, key: Any) -> Any:
        return self._real()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._real()[key] = value

    def __iter__(self):
        return iter(self._real())

    def __len__(self) -> int:
        return len(self._real())

    def __contains__(self, item: Any) -> bool:
        return item in self._real()

    def __bool__(self) -> bool:
        return bool(self._real())

    def __str__(self) -> str:
        return str(self._real())

    def __repr__(self) -> str:
        return f"<deferred {self._label}>"


def _real_module(name: str) -> types.ModuleType:
    """The real module ``name``, imported if need be. Under the lock :func:`deferring` holds: a thread
    not deferring that reached a stand-in while another thread's block runs (``sys.modules`` is
    shared, so its ``import`` got the stand-in) waits for the block to end and its stand-ins to leave
    ``sys.modules``, instead of importing the stand-in as itself (endless recursion)."""
    with _lock:
        return importlib.import_module(name)


class StandIn(types.ModuleType):
    """Takes the place of a deferred module during :func:`deferring`; forwards every attribute, dunders
    such as ``__version__`` included, to the real module outside it."""

    def __getattr__(self, name: str) -> Any:
        if _deferring_now():
            if name.startswith("__"):  # the import system's probes: the stand-in has none of its own
                raise AttributeError(name)
            module = self.__name__
            return Deferred(lambda: _attribute(_real_module(module), name), f"{module}.{name}")
        return _attribute(_real_module(self.__name__), name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, packages: tuple[str, ...]):
        self.packages = packages

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if not _deferring_now():
            return None
        top = fullname.partition(".")[0]
        if top not in self.packages:
            return None
        if top == fullname:
            if importlib.machinery.PathFinder.find_spec(top) is None:
                return None  # not installed: the import fails as laion_clap expects (its try/except)
        elif not isinstance(sys.modules.get(top), StandIn):
            return None  # the real package is imported: so are its submodules, as usual
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> StandIn:
        module = StandIn(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


@contextlib.contextmanager
def deferring(packages: tuple[str, ...] = LAION_TRAINING_IMPORTS) -> Iterator[None]:
    """While inside, imports of ``packages`` (not yet imported) give :class:`StandIn` modules."""
    with _lock:
        finder = _Finder(packages)
        sys.meta_path.insert(0, finder)
        _active.depth = getattr(_active, "depth", 0) + 1
        try:
            yield
        finally:
            _active.depth -= 1
            sys.meta_path.remove(finder)
            for name in [n for n, m in sys.modules.items() if isinstance(m, StandIn)]:
                del sys.modules[name]
