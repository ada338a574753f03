"""The exercises (python -m mlplab.exercises): every worked solution passes, wrong answers fail naming what is wrong,
a template not yet filled in says so, and the command line writes, refuses to overwrite and speaks both languages.

Most checks are called directly (fast); a few go through the command line in a process of its own.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mlplab.engine.runs import write_json
from mlplab.exercises import EXERCISES, check_file, exercise_file, passed, report, solution_file
from mlplab.exercises.checking import Finding

from conftest import REPO, SYNTHETIC, compose_train, data_overrides, run_entry


def check(exercise_id: str, path: Path) -> list[Finding]:
    """check_file, and every message printable on a GBK console (the marks aside, which fall back to OK and X)."""
    findings = check_file(exercise_id, path)
    for finding in findings:
        for text in (finding.what, finding.message):
            text.zh.encode("gbk")
            text.en.encode("gbk")
    return findings


def failed(findings: list[Finding]) -> dict[str, Finding]:
    """The failed findings by what they are about, in English."""
    return {f.what.en: f for f in findings if not f.ok}


def write(folder: Path, code: str, name: str = "answer.py") -> Path:
    path = folder / name
    path.write_text(code, encoding="utf-8")
    return path


def solution(exercise_id: str) -> str:
    return solution_file(exercise_id).read_text(encoding="utf-8")


def variant(tmp_path: Path, exercise_id: str, old: str, new: str) -> list[Finding]:
    """The worked solution with one line changed: a wrong answer."""
    code = solution(exercise_id)
    assert old in code, f"{old!r} is not in the solution of {exercise_id}"
    return check(exercise_id, write(tmp_path, code.replace(old, new)))


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "MLPLAB_LANG": "en", **env}
    environment = {k: v for k, v in environment.items() if v != ""}  # a variable given as "" is unset
    encoding = environment.get("PYTHONIOENCODING", "utf-8")
    command = [sys.executable, "-m", "mlplab.exercises", *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, encoding=encoding, check=False)


# Every exercise: the solution passes, the template is not written yet.


@pytest.mark.parametrize("exercise_id", [i for i in EXERCISES if i != "lab.optimizers"])
def test_the_worked_solution_passes(exercise_id):
    findings = check(exercise_id, solution_file(exercise_id))
    assert passed(findings), report(exercise_id, findings, "en")
    assert report(exercise_id, findings, "en").endswith("\nAll checks passed")
    assert report(exercise_id, findings, "zh").endswith("\n全部通过")


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_the_template_is_not_written_yet(exercise_id, tmp_path):
    findings = check(exercise_id, write(tmp_path, EXERCISES[exercise_id].TEMPLATE))
    assert len(findings) == 1 and not findings[0].ok
    assert "not written yet" in findings[0].message.en and "还没写" in findings[0].message.zh
    assert "Traceback" not in report(exercise_id, findings, "en")


def test_every_exercise_has_its_section_title_and_solution():
    for exercise_id, exercise in EXERCISES.items():
        assert re.fullmatch(r"§\d(\.\d)?", exercise.SECTION) and exercise.TITLE.zh and exercise.TITLE.en
        assert solution_file(exercise_id).exists()
        assert exercise_file(exercise_id) == Path("exercises") / f"ex_{exercise_id.replace('.', '_')}.py"


# 4.3 gradient descent


def test_gradient_descent_with_the_wrong_sign_or_in_place_fails(tmp_path):
    wrong = failed(variant(tmp_path, "4.3", "w - lr * grads[name]", "w + lr * grads[name]"))
    assert list(wrong) == ["the update"] and "sign is flipped" in wrong["the update"].message.en
    in_place = "    for name in params:\n        params[name] -= lr * grads[name]\n    return dict(params)\n"
    code = solution("4.3").split("    # w <-")[0] + in_place
    wrong = failed(check("4.3", write(tmp_path, code)))
    assert list(wrong) == ["params"] and "就地" in wrong["params"].message.zh


# 4.4 the backward pass


def lessons_step_4_as_printed() -> str:
    """Exercise 4.4's template with the lesson's step 4, which it holds as comments, uncommented as printed (and its
    `raise NotImplementedError` left out): the answer of a learner who copies the lesson."""
    template = EXERCISES["4.4"].TEMPLATE
    as_printed = re.sub(r"^    # (?=(dz2|dW2|db2|da1|dz1|dW1|db1|return) )", "    ", template, flags=re.M)
    return "\n".join(line for line in as_printed.splitlines() if "raise NotImplementedError" not in line)


def test_the_lessons_step_4_copied_as_printed_names_the_line_and_the_shapes(tmp_path):
    as_printed = lessons_step_4_as_printed()
    path = write(tmp_path, as_printed, "ex_4_4.py")
    [finding] = check("4.4", path)
    line = next(n for n, text in enumerate(as_printed.splitlines(), 1) if text.strip() == "dW2 = dz2 @ a1.T")
    assert not finding.ok and finding.what.en == "backward"
    assert f"ex_4_4.py, line {line} `dW2 = dz2 @ a1.T`: the shapes do not fit" in finding.message.en
    assert (
        "dz2 (5, 1), a1 (5, 4)" in finding.message.en and "W1 (3, 4), b1 (4,), W2 (4, 1), b2 (1,)" in finding.message.en
    )
    assert f"第 {line} 行" in finding.message.zh and "W1 (3, 4)，b1 (4,)" in finding.message.zh


def test_a_wrong_w1_gradient_is_named_with_its_relative_error(tmp_path):
    wrong = failed(variant(tmp_path, "4.4", "dz1 = da1 * relu_grad(z1)", "dz1 = da1"))  # ReLU' forgotten
    assert list(wrong) == ["W1", "b1"]
    error = float(re.search(r"relative error (\S+) \(largest at \[\d, \d\]\)", wrong["W1"].message.en)[1])
    assert error > 1e-2 and "should be below 1e-7" in wrong["W1"].message.en
    assert "应小于 1e-7" in wrong["W1"].message.zh and "1e-2" in wrong["W1"].message.zh


def test_the_lessons_slips_each_get_their_message(tmp_path):
    transposed = failed(variant(tmp_path, "4.4", "dW1 = X.T @ dz1", "dW1 = dz1.T @ X"))
    assert list(transposed) == ["W1"]
    assert "should be (3, 4) (that of W1), got (4, 3): that is its transpose" in transposed["W1"].message.en
    unsummed = failed(variant(tmp_path, "4.4", "db1 = dz1.sum(axis=0)", "db1 = dz1"))
    assert list(unsummed) == ["b1"] and "should be (4,)" in unsummed["b1"].message.en
    assert "sums over the samples" in unsummed["b1"].message.en and "求和" in unsummed["b1"].message.zh
    no_mean = failed(variant(tmp_path, "4.4", "dz2 = (y_hat - y) / n", "dz2 = y_hat - y"))
    assert list(no_mean) == ["W1", "b1", "W2", "b2"]
    assert all("exactly n = 5 times" in f.message.en and "1/n" in f.message.zh for f in no_mean.values())


def test_an_error_in_the_learners_file_is_one_line_with_its_line_number(tmp_path):
    code = solution("4.4").replace("    n = len(X)\n", "    n = len(X)\n    print(undefined_name)\n")
    [finding] = check("4.4", write(tmp_path, code, "ex.py"))
    line = code.splitlines().index("    print(undefined_name)") + 1
    assert finding.message.en == (
        f"ex.py, line {line} `print(undefined_name)`: NameError: name 'undefined_name' is not defined"
    )
    [finding] = check("4.4", write(tmp_path, "import numpy as np\n\ndef backward(X, y\n", "ex.py"))
    assert finding.message.en.startswith("ex.py, line 3 `def backward(X, y`: SyntaxError: ")


# momentum, dropout, l2, confusion


def test_momentum_in_another_form_differs_from_torch_and_says_which_form(tmp_path):
    wrong = failed(variant(tmp_path, "momentum", "v = momentum * v + g", "v = momentum * v + (1 - momentum) * g"))
    assert list(wrong) == ["8 steps"]
    assert "from step 1 on" in wrong["8 steps"].message.en and "(1 - μ)" in wrong["8 steps"].message.en
    wrong = failed(variant(tmp_path, "momentum", "return w - lr * v, v", "return w - lr * g, v"))
    assert "velocity v is not used" in wrong["8 steps"].message.en and "from step 2 on" in wrong["8 steps"].message.en


def test_dropout_without_the_scaling_fails_naming_the_scale(tmp_path):
    wrong = failed(variant(tmp_path, "dropout", "return a * keep / (1 - p)", "return a * keep"))
    assert list(wrong) == ["the scale", "the mean"]
    assert "scaled by 1/(1 - p) = 1.4286" in wrong["the scale"].message.en
    assert "没有缩放" in wrong["the scale"].message.zh


def test_dropout_that_keeps_with_probability_p_or_ignores_rng_fails(tmp_path):
    wrong = failed(variant(tmp_path, "dropout", "keep = rng.random(a.shape) >= p", "keep = rng.random(a.shape) < p"))
    assert "p is the probability to drop a unit" in wrong["the fraction dropped"].message.en
    global_rng = "keep = np.random.random(a.shape) >= p"
    code = "import numpy as np\n" + solution("dropout").replace("keep = rng.random(a.shape) >= p", global_rng)
    wrong = failed(check("dropout", write(tmp_path, code)))
    assert list(wrong) == ["rng"]
    code = solution("dropout").replace("        return a.copy()", "        return a * (1 - p)")
    assert "training=False" in failed(check("dropout", write(tmp_path, code)))


def test_l2_in_the_half_convention_is_told_the_labs(tmp_path):
    code = solution("l2").replace("lam * sum(", "lam / 2 * sum(").replace("2 * lam * w", "lam * w")
    wrong = failed(check("l2", write(tmp_path, code)))
    assert list(wrong) == ["the penalty", "the gradient"]
    assert "lam/2 * sum(w^2) convention" in wrong["the penalty"].message.en
    assert "lam * w is the gradient of lam/2 * sum(w^2)" in wrong["the gradient"].message.en


def test_a_transposed_or_shrunk_confusion_matrix_fails(tmp_path):
    wrong = failed(variant(tmp_path, "confusion", "(targets, predictions), 1", "(predictions, targets), 1"))
    assert list(wrong) == ["random data", "a class never predicted"]
    assert "transposed" in wrong["random data"].message.en
    code = solution("confusion").replace("(classes, classes)", "(max(targets.max(), predictions.max()) + 1,) * 2")
    wrong = failed(check("confusion", write(tmp_path, code)))
    assert list(wrong) == ["a class never predicted"]
    assert "should be (5, 5), got (4, 4)" in wrong["a class never predicted"].message.en


# lab.optimizers, against sweep folders in the lab's own format


def fake_sweep(folder: Path, values: dict[str, list[float]]) -> Path:
    """Job folders as a sweep leaves them (.hydra/overrides.yaml, metrics.json), then the lab's own writer of
    results.csv, so that the table's format is the lab's."""
    from mlplab.experiments.sweep import write_results

    number = 0
    for optimizer, accuracies in values.items():
        for seed, accuracy in enumerate(accuracies):
            job = folder / f"{number}_optimizer={optimizer},seed={seed}"
            (job / ".hydra").mkdir(parents=True)
            OmegaConf.save(OmegaConf.create([f"optimizer={optimizer}", f"seed={seed}"]), job / ".hydra/overrides.yaml")
            metrics = {"val/acc_best": accuracy, "test/acc": accuracy - 0.001, "test/loss": 1 - accuracy}
            write_json(job / "metrics.json", {**metrics, "status": "ok", "epochs": 1, "train_time_s": 1.0})
            number += 1
    write_results(folder)
    return folder


def lab_answer(folder: Path, sweep: str, answer: str, seeds: str = "[0, 1, 2]") -> Path:
    return write(folder, f'SWEEP = "{sweep}"\nANSWER = "{answer}"\nSEEDS = {seeds}\n', "ex_lab_optimizers.py")


CLEAR = {"sgd": [0.900, 0.910, 0.905], "adam": [0.950, 0.952, 0.949]}  # Adam better at every seed, by 4.5 points
NOISE = {"sgd": [0.950, 0.941, 0.946], "adam": [0.944, 0.949, 0.945]}


def test_the_lab_answer_that_agrees_with_the_sweeps_verdict_passes(tmp_path, monkeypatch):
    fake_sweep(tmp_path / "outputs/train/multirun/2025-01-01_00-00-00_000000", CLEAR)
    monkeypatch.chdir(tmp_path)
    findings = check(
        "lab.optimizers", lab_answer(tmp_path, "outputs/train/multirun/2025-01-01_00-00-00_000000", "better")
    )
    assert passed(findings), report("lab.optimizers", findings, "en")
    findings = check("lab.optimizers", solution_file("lab.optimizers"))  # it reads the newest sweep folder
    assert passed(findings), report("lab.optimizers", findings, "en")


def test_a_lab_answer_the_table_contradicts_is_told_what_the_table_says_and_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_sweep(tmp_path / "clear", CLEAR)
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, "clear", "not distinguishable")))
    message = wrong["ANSWER"].message
    assert list(wrong) == ["ANSWER"]
    assert message.en.startswith("says not distinguishable, the table says better: the row optimizer=sgd (line 3 of ")
    assert "Read line 3 of results.csv, its verdict column" in message.en and "results.csv 第 3 行" in message.zh
    lines = (tmp_path / "clear/results.csv").read_text(encoding="utf-8").splitlines()
    assert lines[2].startswith("sgd,3,") and ",worse (p=" in lines[2]
    fake_sweep(tmp_path / "noise", NOISE)
    assert passed(check("lab.optimizers", lab_answer(tmp_path, "noise", "not distinguishable")))
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, "noise", "better")))
    assert "the table says not distinguishable" in wrong["ANSWER"].message.en
    assert "these seeds detect differences of" in wrong["ANSWER"].message.en


def test_a_lab_sweep_needs_both_optimizers_three_seeds_each_and_the_seeds_it_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_sweep(tmp_path / "two", {"sgd": [0.90, 0.91], "adam": [0.95, 0.96]})
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, "two", "better", "[0, 1]")))
    assert list(wrong) == ["the seeds"] and "at least 3 seeds" in wrong["the seeds"].message.en
    fake_sweep(tmp_path / "clear", CLEAR)
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, "clear", "better", "[0, 1]")))
    assert list(wrong) == ["SEEDS"] and wrong["SEEDS"].message.en == "says [0, 1], the sweep ran [0, 1, 2]"
    fake_sweep(tmp_path / "one", {"adam": [0.95, 0.96, 0.97], "momentum": [0.94, 0.95, 0.96]})
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, "one", "better")))
    assert list(wrong) == ["the optimizers"] and "optimizer=sgd,adam" in wrong["the optimizers"].message.en
    [finding] = check("lab.optimizers", lab_answer(tmp_path, "nowhere", "better"))
    assert finding.what.en == "SWEEP" and "no folder nowhere" in finding.message.en
    (tmp_path / "unfinished").mkdir()
    [finding] = check("lab.optimizers", lab_answer(tmp_path, "unfinished", "better"))
    assert "python scripts/summarize.py unfinished" in finding.message.en


@pytest.mark.slow
def test_the_lab_solution_reads_a_real_sweep(synthetic_mnist, tmp_path, monkeypatch):
    folder = tmp_path / "outputs/train/multirun/2025-01-01_00-00-00_000000"
    quick = [*SYNTHETIC, "trainer.max_epochs=1", "logger=none", *data_overrides(synthetic_mnist)]
    swept = ["optimizer=sgd,adam", "seed=0,1,2", f"hydra.sweep.dir={folder}"]
    status, _, err = run_entry("src/train.py", ["-m", *quick, *swept])
    assert status == 0, err[-3000:]
    monkeypatch.chdir(tmp_path)
    findings = check("lab.optimizers", solution_file("lab.optimizers"))
    assert passed(findings), report("lab.optimizers", findings, "en")
    answer = next(f for f in findings if f.what.en == "ANSWER").message.en.split(",")[0]
    other = next(a for a in ("better", "worse", "not distinguishable") if a != answer)
    wrong = failed(check("lab.optimizers", lab_answer(tmp_path, str(folder), other)))
    assert list(wrong) == ["ANSWER"] and "line " in wrong["ANSWER"].message.en


# The command line


def test_list_start_and_check_from_the_command_line(tmp_path):
    listed = cli("list", cwd=tmp_path)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(EXERCISES)
    assert re.search(r"^4\.4 +§4\.4 +The backward pass$", listed.stdout, flags=re.M)
    assert "反向传播" in cli("list", "--lang", "zh", cwd=tmp_path).stdout

    started = cli("start", "4.4", cwd=tmp_path)
    assert started.returncode == 0 and "wrote exercises/ex_4_4.py" in started.stdout
    assert (tmp_path / "exercises/ex_4_4.py").read_text(encoding="utf-8") == EXERCISES["4.4"].TEMPLATE
    (tmp_path / "exercises/ex_4_4.py").write_text(solution("4.4"), encoding="utf-8")
    again = cli("start", "4.4", "--lang", "zh", cwd=tmp_path)
    assert again.returncode == 1 and "已经存在，没有覆盖它" in again.stdout
    assert (tmp_path / "exercises/ex_4_4.py").read_text(encoding="utf-8") == solution("4.4")  # kept

    right = cli("check", "4.4", cwd=tmp_path)
    assert right.returncode == 0, right.stdout + right.stderr
    assert right.stdout.splitlines()[0] == "Exercise 4.4 · The backward pass (the lesson's §4.4)"
    assert right.stdout.splitlines()[1].startswith("✓ W1: relative error ")
    assert right.stdout.splitlines()[-1] == "All checks passed"
    wrong = solution("4.4").replace("dW1 = X.T @ dz1", "dW1 = X.T @ da1")
    write(tmp_path, wrong, "wrong.py")
    failing = cli("check", "4.4", "--file", "wrong.py", "--lang", "zh", cwd=tmp_path)
    assert failing.returncode == 1 and failing.stdout.splitlines()[0] == "练习 4.4 · 反向传播（课程 §4.4）"
    assert re.search(r"^✗ W1：相对误差 \S+（最大的在 \[\d, \d\]），应小于 1e-7", failing.stdout, flags=re.M)
    assert failing.stdout.splitlines()[-1] == "还没通过：W1"


def test_a_missing_file_says_which_start_command_to_run(tmp_path):
    missing = cli("check", "dropout", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stdout.strip() == (
        f"{Path('exercises/ex_dropout.py')} does not exist: run python -m mlplab.exercises start dropout first"
    )
    assert cli("check", "4.5", cwd=tmp_path).returncode == 2


def test_the_language_follows_mlplab_lang_then_the_locale(tmp_path):
    path = str(solution_file("4.3"))
    assert cli("check", "4.3", "--file", path, cwd=tmp_path, MLPLAB_LANG="", LC_ALL="", LC_MESSAGES="",
               LANG="zh_CN.UTF-8").stdout.endswith("全部通过\n")  # fmt: skip
    assert cli("check", "4.3", "--file", path, cwd=tmp_path, MLPLAB_LANG="zh",
               LANG="en_US.UTF-8").stdout.endswith("全部通过\n")  # fmt: skip
    assert cli("check", "4.3", "--file", path, "--lang", "en", cwd=tmp_path, MLPLAB_LANG="zh").stdout.endswith(
        "All checks passed\n"
    )


@pytest.mark.parametrize(("encoding", "ok"), [("gbk", "OK"), ("gb18030", "✓")])
def test_a_chinese_console_prints_the_check(tmp_path, encoding, ok):
    result = cli("check", "4.4", "--file", str(solution_file("4.4")), "--lang", "zh", cwd=tmp_path,
                 PYTHONIOENCODING=encoding)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith(f"{ok} W1：相对误差 ")


# The pages


PAGES = ("docs/exercises.md", "docs/exercises.zh-CN.md")


def test_the_pages_show_every_exercise_and_its_commands_and_link_the_solutions():
    english, chinese = ((REPO / page).read_text(encoding="utf-8") for page in PAGES)
    for exercise_id in EXERCISES:
        for page in (english, chinese):
            assert f"python -m mlplab.exercises start {exercise_id}\n" in page
            assert f"python -m mlplab.exercises check {exercise_id}\n" in page
            assert f"](../src/mlplab/exercises/solutions/{solution_file(exercise_id).name})" in page
    for link in re.findall(r"\]\((\.\./[^)#]+)\)", english + chinese):
        assert (REPO / "docs" / link).resolve().exists(), link


def test_every_command_of_the_chinese_page_is_on_the_english_one_and_train_commands_compose(tmp_path):
    english, chinese = ((REPO / page).read_text(encoding="utf-8") for page in PAGES)

    def commands(page: str) -> list[str]:
        blocks = re.findall(r"```(?:bash|text)?\n(.*?)```", page, flags=re.S)
        return [
            m[1].strip() for b in blocks for line in b.splitlines() if (m := re.match(r"^(?:\$ )?(python .*)$", line))
        ]

    assert commands(chinese) and all(command in english for command in commands(chinese))
    bash = [block for block in re.findall(r"```bash\n(.*?)```", english, flags=re.S)]
    train = [line.strip() for block in bash for line in block.splitlines() if line.startswith("python src/train.py")]
    assert train
    for command in train:  # a sweep's first job: each swept key at its first value
        words = [word for word in command.split()[2:] if word != "-m" and not word.startswith("hydra.")]
        compose_train([word.split(",")[0] for word in words], tmp_path)  # Hydra refuses an unknown option or key


def test_the_pages_quote_the_lesson_exactly():
    from test_lesson_quotes import page_quotes

    for page in PAGES:
        quotes, problems, claims = page_quotes(page)
        assert quotes, f"{page} quotes nothing"
        problems += [problem for quote in quotes if (problem := quote.problem())]
        assert not problems and not claims, problems + claims
