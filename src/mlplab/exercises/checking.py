"""What every exercise's checker shares: messages in both languages, findings, loading the learner's file, calling
its functions so that a mistake in them becomes one line (not a traceback), and numerical gradients."""

import importlib.util
import linecache
import locale
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Text:
    """One message in Chinese and English, side by side, so that neither language can be forgotten."""

    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def __add__(self, other: "Text") -> "Text":
        return Text(self.zh + other.zh, self.en + other.en)


def same(word: str) -> Text:
    """A name that reads the same in both languages (W1, b2, training=False)."""
    return Text(word, word)


@dataclass(frozen=True)
class Finding:
    """One check: whether it passed, what it was about (the summary line lists the failed ones), and what it found."""

    ok: bool
    what: Text
    message: Text


def right(what: Text | str, zh: str, en: str) -> Finding:
    return Finding(True, same(what) if isinstance(what, str) else what, Text(zh, en))


def wrong(what: Text | str, zh: str, en: str) -> Finding:
    return Finding(False, same(what) if isinstance(what, str) else what, Text(zh, en))


class Stop(Exception):
    """The learner's code could not be checked further (not written, missing, or raised): one finding says why.
    `error` is the learner's exception, for checkers that can say more about it (a product whose shapes clash)."""

    def __init__(self, finding: Finding, error: BaseException | None = None) -> None:
        super().__init__(finding.message.en)
        self.finding, self.error = finding, error


def load(path: Path) -> ModuleType:
    """The learner's file as a module, imported by its path (it needs no package and no sys.path entry)."""
    name = f"mlplab_exercise_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise Stop(wrong(path.name, f"{path} 不是一个 Python 文件", f"{path} is not a Python file"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and the like in the learner's file look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:  # raised while compiling: no frame of the file to point at, but it knows its line
        raise Stop(failure(path.name, path, error, error.lineno, (error.text or "").strip()), error) from None
    except Exception as error:
        raise Stop(failure(path.name, path, error), error) from None
    return module


def call(module: ModuleType, function: str, *args: Any) -> Any:
    """module.function(*args); a NotImplementedError (the template's body), a missing function or any other error
    raises Stop with its one-line finding."""
    path = Path(module.__file__ or "")
    found = getattr(module, function, None)
    if not callable(found):
        raise Stop(
            wrong(
                function,
                f"{path.name} 里没有函数 {function}：函数名要和模板里的一样",
                f"{path.name} has no function {function}: keep the template's name",
            )
        )
    try:
        return found(*args)
    except NotImplementedError as error:
        raise Stop(not_written(function), error) from None
    except Exception as error:
        raise Stop(failure(function, path, error), error) from None


def not_written(what: str) -> Finding:
    return wrong(
        what,
        f"还没写（模板里的 raise NotImplementedError 还在）：写好 {what} 再来检查",
        f"not written yet (the template's raise NotImplementedError is still there): write {what}, then check again",
    )


def where(error: BaseException, path: Path) -> tuple[int | None, str, dict[str, Any]]:
    """(line, its source, the local variables there) of the innermost frame in the learner's file: the line they
    wrote, even when numpy raised below it."""
    found: tuple[int | None, str, dict[str, Any]] = (None, "", {})
    tb = error.__traceback__
    while tb is not None:
        if _same_file(tb.tb_frame.f_code.co_filename, path):
            line = tb.tb_lineno
            found = (line, linecache.getline(str(path), line).strip(), dict(tb.tb_frame.f_locals))
        tb = tb.tb_next
    return found


def failure(what: str, path: Path, error: BaseException, line: int | None = None, source: str = "") -> Finding:
    """An exception of the learner's code in one line: where in their file, and its first line of text."""
    if line is None:
        line, source, _ = where(error, path)
    text = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    at = f" `{source}`" if source else ""
    if line is None:
        return wrong(what, f"{path.name} 出错：{text}", f"{path.name} raised {text}")
    return wrong(what, f"{path.name} 第 {line} 行{at} 出错：{text}", f"{path.name}, line {line}{at}: {text}")


def _same_file(a: str, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except OSError:
        return False


# Gradients: CS231n's relative error against central differences.


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d f / d x by central differences, changing x in place one element at a time (and putting it back).
    In float64 with h = 1e-5 the error is about 1e-10: far below the 1e-7 that a right gradient must reach."""
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        up = f()
        x[index] = saved - h
        down = f()
        x[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """The largest |a - n| / max(|a|, |n|, tiny) and where it is: an absolute error means nothing without the size
    of the gradient, and where both are 0 (a dead ReLU unit) the error is 0, not 0/0."""
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), np.finfo(np.float64).tiny)
    error = np.abs(analytic - numeric) / scale
    index = np.unravel_index(int(np.argmax(error)), error.shape)
    return float(error[index]), tuple(int(i) for i in index)


def as_array(value: Any) -> np.ndarray | None:
    """The learner's result as a float64 array, or None when it is not one (None, a string, a ragged list)."""
    if value is None:  # np.asarray would make it nan
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def index_text(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]"


def shape_text(shape: tuple[int, ...]) -> str:
    """(4,) and (3, 4), as numpy prints them, so that the message matches what the learner's print() shows."""
    return str(tuple(shape))


# The language and the console.


def language(choice: str | None = None) -> str:
    """ "zh" or "en": --lang, else MLPLAB_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG, then the system's)."""
    if choice:
        return choice
    for variable in ("MLPLAB_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(variable):
            return "zh" if value.lower().startswith("zh") else "en"
    system = locale.getlocale()[0] or ""  # Windows names it "Chinese (Simplified)_China"
    return "zh" if system.lower().startswith(("zh", "chinese")) else "en"


def marks(stream: Any = None) -> tuple[str, str]:
    """✓ and ✗ where the console can print them (UTF-8, GB18030); OK and X where it cannot (GBK, cp936)."""
    encoding = getattr(stream if stream is not None else sys.stdout, "encoding", None) or "utf-8"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "OK", "X"
    return "✓", "✗"
