"""Exercise lab.optimizers: is Adam better than SGD here, and how sure are you? Checked against the sweep's own
table (results.csv, which the lab writes when a sweep ends), not against the learner's reading of it."""

import csv
import math
from pathlib import Path
from types import ModuleType

from mlplab.exercises.checking import Finding, Stop, Text, not_written, right, same, wrong

ID = "lab.optimizers"
SECTION = "§3.3"
TITLE = Text("Adam 比 SGD 好吗？有多大把握？", "Is Adam better than SGD here, and how sure are you?")
COMMAND = "python src/train.py -m optimizer=sgd,adam seed=0,1,2 trainer.max_epochs=1"
TEMPLATE = f'''\
"""练习 lab.optimizers · Adam 比 SGD 好吗？有多大把握？（课程 §3.3）
Exercise lab.optimizers · Is Adam better than SGD here, and how sure are you? (the lesson's §3.3)

课程 §3.3 列出了梯度下降、动量优化、RMSProp 和 Adam，没有说哪个更好。用实验回答：
The lesson's §3.3 lists gradient descent, momentum, RMSProp and Adam, and does not say which is better. Find out:

1. 在仓库的根目录跑一次扫参：每个优化器 3 个种子，各训练 1 轮，共 6 次训练（CPU 上要几分钟）。
   Run a sweep from the repository's root: 3 seeds of each optimizer, 1 epoch each, 6 runs (minutes on a CPU):

       {COMMAND}

2. 结束时它打印结果表和扫参文件夹 / at the end it prints the table and the sweep folder:
       results: outputs/train/multirun/<date_time>/results.{{csv,md,png}}
3. 读表里的 verdict 一列（docs/comparing.zh-CN.md 的“怎么读结论”一节）：最好的一行是 best，另一行和它比，
   是 worse (p=...)，或者 not distinguishable from the best ...（这几个种子分不出来）。
   Read the table's verdict column (docs/comparing.md, "Reading the verdicts"): the best row says best, the other is
   compared with it: worse (p=...), or not distinguishable from the best ... (these seeds cannot tell).

检查 / check:  python -m mlplab.exercises check lab.optimizers
"""

SWEEP = None  # 扫参文件夹 / the sweep folder, e.g. "outputs/train/multirun/2025-01-01_12-00-00_000000"
ANSWER = None  # Adam 对 SGD / Adam against SGD: "better", "worse" or "not distinguishable"
SEEDS = None  # 跑过的种子 / the seeds you ran, e.g. [0, 1, 2]
'''

ANSWERS = {
    "better": "better",
    "更好": "better",
    "worse": "worse",
    "更差": "worse",
    "not distinguishable": "not distinguishable",
    "分不出": "not distinguishable",
    "无法区分": "not distinguishable",
}
IN_CHINESE = {"better": "更好", "worse": "更差", "not distinguishable": "分不出"}
MIN_SEEDS = 3


def check(module: ModuleType) -> list[Finding]:
    sweep, answer, seeds = (getattr(module, name, None) for name in ("SWEEP", "ANSWER", "SEEDS"))
    missing = [name for name, value in (("SWEEP", sweep), ("ANSWER", answer), ("SEEDS", seeds)) if value is None]
    if missing:
        raise Stop(not_written(", ".join(missing)))
    folder = locate(str(sweep), Path(module.__file__ or "."))
    header, rows = read_results(folder, str(sweep))
    findings = [right("SWEEP", f"{sweep}：读它的 results.csv", f"{sweep}: reading its results.csv")]
    swept = [column for column in header[: header.index("seeds")] if column != "commands"]
    by_optimizer = {row["optimizer"]: (line, row) for line, row in rows} if "optimizer" in swept else {}
    what = Text("优化器", "the optimizers")
    if swept != ["optimizer"] or not {"sgd", "adam"} <= by_optimizer.keys():
        findings.append(
            wrong(
                what,
                f"表里应有 optimizer=sgd 和 optimizer=adam 两行，只变 optimizer 和 seed；这个扫参变的是 {swept}，"
                f"优化器有 {sorted(by_optimizer)}。跑：{COMMAND}",
                f"the table should have the rows optimizer=sgd and optimizer=adam, varying optimizer and seed only; "
                f"this sweep varies {swept}, with optimizers {sorted(by_optimizer)}. Run: {COMMAND}",
            )
        )
        return findings
    findings.append(right(what, "表里有 sgd 和 adam 两行", "the table has the rows sgd and adam"))
    findings.append(enough_seeds(by_optimizer))
    findings.append(declared_seeds(folder, seeds))
    findings.append(agrees(str(answer), by_optimizer))
    return findings


def locate(sweep: str, exercise: Path) -> Path:
    """The sweep folder: as written, from the folder the check runs in, else from the one above exercises/."""
    for base in (Path.cwd(), exercise.resolve().parent.parent):
        if (folder := base / Path(sweep).expanduser()).is_dir():
            return folder
    raise Stop(
        wrong(
            "SWEEP",
            f"找不到文件夹 {sweep}：扫参结束时会打印它"
            "（results: outputs/train/multirun/<日期_时间>/results.{csv,md,png}）",
            f"no folder {sweep}: the sweep prints it when it ends (results: outputs/train/multirun/<date_time>/"
            "results.{csv,md,png})",
        )
    )


def read_results(folder: Path, sweep: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """results.csv's header and its rows, each with the line it starts on (a quoted error may span lines)."""
    path = folder / "results.csv"
    if not path.exists():
        raise Stop(
            wrong(
                "SWEEP",
                f"{sweep} 里没有 results.csv：扫参没有跑完。跑完它，"
                f"或者用 python scripts/summarize.py {sweep} 重新生成",
                f"{sweep} has no results.csv: the sweep did not end. Finish it, or rebuild the table with "
                f"python scripts/summarize.py {sweep}",
            )
        )
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), []
        while True:
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                return header, rows
            rows.append((line, dict(zip(header, values, strict=False))))


def enough_seeds(by_optimizer: dict[str, tuple[int, dict[str, str]]]) -> Finding:
    what = Text("种子数", "the seeds")
    short = {name: row["seeds"] for name, (_, row) in by_optimizer.items() if name in ("sgd", "adam")}
    unfinished = {name: by_optimizer[name][1]["status"] for name in short if by_optimizer[name][1]["status"] != "ok"}
    if unfinished:
        return wrong(
            what,
            f"有的任务没有正常结束：{unfinished}（status 一列）；用同一个命令加 hydra.sweep.dir=<扫参文件夹> 接着跑",
            f"some jobs did not end ok: {unfinished} (the status column); continue the sweep with the same command "
            "and hydra.sweep.dir=<the sweep folder>",
        )
    if all(int(n) >= MIN_SEEDS for n in short.values()):
        return right(what, f"每个优化器 {short['sgd']} 个种子", f"{short['sgd']} seeds each")
    return wrong(
        what,
        f"每个优化器至少要 {MIN_SEEDS} 个种子（seeds 一列：{short}）：一两个种子给不出可信的区间",
        f"each optimizer needs at least {MIN_SEEDS} seeds (the seeds column: {short}): one or two give no "
        "interval worth the name",
    )


def declared_seeds(folder: Path, seeds: object) -> Finding:
    """SEEDS against the seeds of the sweep's jobs, read from their folders as the lab's own table reads them."""
    from mlplab.experiments.sweep import load_jobs  # here: it imports Hydra, which only this exercise needs

    ran = sorted({job.seed for job in load_jobs(folder) if job.overrides.get("optimizer") in ("sgd", "adam")})
    try:
        declared = sorted({int(seed) for seed in seeds})  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        declared = None
    if declared == ran:
        return right("SEEDS", f"{ran}，与扫参相同", f"{ran}, as the sweep ran")
    return wrong("SEEDS", f"写的是 {seeds}，扫参跑的是 {ran}", f"says {seeds}, the sweep ran {ran}")


def lab_answer(by_optimizer: dict[str, tuple[int, dict[str, str]]]) -> tuple[str | None, str]:
    """(Adam against SGD as the table's verdict says it, the row whose verdict says it: the one that is not best)."""
    adam, sgd = by_optimizer["adam"][1]["verdict"], by_optimizer["sgd"][1]["verdict"]
    other, verdict = ("sgd", sgd) if adam == "best" else ("adam", adam) if sgd == "best" else (None, "")
    if other is None:
        return None, ""
    if verdict.startswith("worse"):  # also sweep.seeds=auto's "worse: decided after ..."
        return ("better" if other == "sgd" else "worse"), other
    if verdict.startswith("not distinguishable"):
        return "not distinguishable", other
    return None, other


def agrees(answer: str, by_optimizer: dict[str, tuple[int, dict[str, str]]]) -> Finding:
    what = same("ANSWER")
    given = ANSWERS.get(answer.strip().lower())
    if given is None:
        return wrong(
            what,
            f'写的是 {answer!r}：应是 "better"、"worse" 或 "not distinguishable"',
            f'says {answer!r}: should be "better", "worse" or "not distinguishable"',
        )
    table, other = lab_answer(by_optimizer)
    if table is None:
        best = next((name for name, (_, row) in by_optimizer.items() if row["verdict"] == "best"), "?")
        return wrong(
            what,
            f"表里最好的是 optimizer={best}，不是 sgd 也不是 adam，verdict 是和它比的；只跑 sgd 和 adam：{COMMAND}",
            f"the table's best is optimizer={best}, neither sgd nor adam, and the verdicts compare with it; sweep "
            f"sgd and adam only: {COMMAND}",
        )
    line, row = by_optimizer[other]
    evidence = evidence_text(row)
    says = Text(
        f'optimizer={other} 那一行（results.csv 第 {line} 行）的 verdict 是 "{row["verdict"]}"{evidence.zh}',
        f'the row optimizer={other} (line {line} of results.csv) says "{row["verdict"]}"{evidence.en}',
    )
    if given == table:
        return Finding(
            True, what, Text(f"{given}（{IN_CHINESE[given]}），与表一致：", f"{given}, as the table: ") + says
        )
    return Finding(
        False,
        what,
        Text(
            f"写的是 {given}（{IN_CHINESE[given]}），表里说的是 {table}（{IN_CHINESE[table]}）：",
            f"says {given}, the table says {table}: ",
        )
        + says
        + Text(
            f"。去读 results.csv 第 {line} 行的 verdict 一列（results.md 里是同一行）",
            f". Read line {line} of results.csv, its verdict column (the same row of results.md)",
        ),
    )


def evidence_text(row: dict[str, str]) -> Text:
    """How sure the table is: the paired difference from the best in points, its interval and p, as results.md
    shows them, and for a row not told apart, the smallest difference its seeds would have found."""
    try:
        diff, low, high, p, detectable = (
            float(row[column])
            for column in (*(f"val/acc_best {part}" for part in ("diff", "diff_low", "diff_high", "p")), "detectable")
        )
    except (KeyError, ValueError):
        return Text("", "")
    if math.isnan(diff):
        return Text("", "")
    figures = f"{diff * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}]"
    text = Text(
        f"；它的 val/acc_best 与最好的一行差 {figures} 个百分点，p={p:.2g}",
        f"; its val/acc_best against the best row: {figures} points, p={p:.2g}",
    )
    if not math.isnan(detectable):
        text += Text(
            f"；这几个种子能分辨的差别至少要 {detectable * 100:.2f} 个百分点",
            f"; these seeds detect differences of {detectable * 100:.2f} points or more",
        )
    return text
