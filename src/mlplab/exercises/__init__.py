"""Exercises that check themselves (练习), like d2l-zh's and CS231n's gradient checks.

    python -m mlplab.exercises list              # the exercises: id, title, the lesson's section
    python -m mlplab.exercises start 4.4         # writes the template to exercises/ex_4_4.py
    python -m mlplab.exercises check 4.4         # checks it; exit 0 when right, 1 when not

One module per exercise (its ID, SECTION, TITLE, TEMPLATE and check(module) -> list[Finding]); their worked
solutions are in solutions/, under the same names. docs/exercises.md says what each one asks.

Who opens it: a learner, after reading the lesson's section; a teacher adding an exercise (a module here, a line
in EXERCISES, a solution, a test in tests/test_exercises.py).
"""

from pathlib import Path
from types import ModuleType

from mlplab.exercises import (
    backward_44,
    confusion,
    dropout,
    gradient_descent_43,
    l2,
    lab_optimizers,
    momentum,
)
from mlplab.exercises.checking import Finding, Stop, Text, load, marks

EXERCISES: dict[str, ModuleType] = {
    module.ID: module for module in (gradient_descent_43, backward_44, momentum, dropout, l2, confusion, lab_optimizers)
}
SOLUTIONS = Path(__file__).parent / "solutions"


def exercise_file(exercise_id: str) -> Path:
    """Where `start` writes an exercise, relative to the folder it runs in: exercises/ex_4_4.py."""
    return Path("exercises") / f"ex_{exercise_id.replace('.', '_')}.py"


def solution_file(exercise_id: str) -> Path:
    return SOLUTIONS / Path(EXERCISES[exercise_id].__file__ or "").name


def check_file(exercise_id: str, path: Path) -> list[Finding]:
    """The findings of one exercise on the learner's file; a mistake that stops the check is the last one."""
    try:
        return EXERCISES[exercise_id].check(load(path))
    except Stop as stop:
        return [stop.finding]


ALL_PASSED = Text("全部通过", "All checks passed")
NOT_YET = Text("还没通过：", "Not passed yet: ")


def report(exercise_id: str, findings: list[Finding], lang: str, stream: object = None) -> str:
    """The check's text: a header, one line per finding (✓ or ✗), and whether all passed."""
    exercise = EXERCISES[exercise_id]
    ok, bad = marks(stream)
    header = Text(
        f"练习 {exercise.ID} · {exercise.TITLE.zh}（课程 {exercise.SECTION}）",
        f"Exercise {exercise.ID} · {exercise.TITLE.en} (the lesson's {exercise.SECTION})",
    )
    colon = "：" if lang == "zh" else ": "
    lines = [header(lang)]
    lines += [f"{ok if f.ok else bad} {f.what(lang)}{colon}{f.message(lang)}" for f in findings]
    failed = [f.what(lang) for f in findings if not f.ok]
    lines.append(NOT_YET(lang) + ("、" if lang == "zh" else ", ").join(failed) if failed else ALL_PASSED(lang))
    return "\n".join(lines)


def passed(findings: list[Finding]) -> bool:
    return bool(findings) and all(f.ok for f in findings)
