"""python -m mlplab.exercises list | start ID | check ID [--file PATH] [--lang zh|en]"""

import argparse
import sys
from pathlib import Path

from mlplab.exercises import EXERCISES, check_file, exercise_file, passed, report
from mlplab.exercises.checking import Text, language


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lang", choices=["zh", "en"], help="zh or en (default: MLPLAB_LANG, else the locale)")
    parser = argparse.ArgumentParser(
        prog="python -m mlplab.exercises",
        parents=[common],
        description="练习：写好，自己检查 / exercises that check themselves",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[common], help="列出练习 / list the exercises")
    start = commands.add_parser("start", parents=[common], help="写出模板 / write an exercise's template")
    start.add_argument("id")
    check = commands.add_parser("check", parents=[common], help="检查 / check an exercise")
    check.add_argument("id")
    check.add_argument("--file", type=Path, help="the file to check (default: exercises/ex_<id>.py)")
    args = parser.parse_args(argv)
    lang = language(args.lang)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a console that lacks a character shows ?, not a traceback

    if args.command == "list":
        for exercise in EXERCISES.values():
            print(f"{exercise.ID:<15} {exercise.SECTION:<5} {exercise.TITLE(lang)}")
        return 0
    if args.id not in EXERCISES:
        known = ", ".join(EXERCISES)
        print(Text(f"没有练习 {args.id}；有：{known}", f"no exercise {args.id}; there are: {known}")(lang))
        return 2
    if args.command == "start":
        return start_exercise(args.id, lang)
    path = args.file or exercise_file(args.id)
    if not path.exists():
        begin = f"python -m mlplab.exercises start {args.id}"
        print(
            Text(f"{path} 不存在：先运行 {begin}", f"{path} does not exist: run {begin} first")(lang)
            if args.file is None
            else Text(f"{path} 不存在", f"{path} does not exist")(lang)
        )
        return 1
    findings = check_file(args.id, path)
    print(report(args.id, findings, lang, sys.stdout))
    return 0 if passed(findings) else 1


def start_exercise(exercise_id: str, lang: str) -> int:
    path = exercise_file(exercise_id)
    if path.exists():
        print(
            Text(
                f"{path} 已经存在，没有覆盖它：要从头开始，先把它删掉或改名",
                f"{path} already exists and was not overwritten: to start again, delete or rename it first",
            )(lang)
        )
        return 1
    path.parent.mkdir(exist_ok=True)
    path.write_text(EXERCISES[exercise_id].TEMPLATE, encoding="utf-8")
    check = f"python -m mlplab.exercises check {exercise_id}"
    print(Text(f"已写好 {path}：写完后运行 {check}", f"wrote {path}: fill it in, then run {check}")(lang))
    return 0


if __name__ == "__main__":
    sys.exit(main())
