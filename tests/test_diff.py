"""Config comparisons (a resume's checkpoint against the config, a sweep job's recorded config against the command's):
a key that one side lacks counts as its class's default, so an argument added later with a default keeps earlier
checkpoints and sweep folders comparable."""

from mlplab.config.diff import differences

MLP = {"_target_": "mlplab.models.mlp.MLP", "hidden_dims": [16]}


def test_a_key_missing_on_one_side_is_no_difference_where_the_other_holds_its_default():
    earlier = {"model": MLP, "seed": 0}
    now = {"model": {**MLP, "activation": "relu", "dropout": 0.0}, "seed": 0}  # MLP's defaults
    assert differences(earlier, now) == []
    assert differences(now, earlier) == []


def test_a_key_missing_on_one_side_differs_where_the_other_holds_another_value():
    earlier, now = {"model": MLP}, {"model": {**MLP, "activation": "gelu"}}
    assert differences(earlier, now) == [("model.activation", "-", "gelu")]


def test_a_key_without_a_class_to_ask_or_under_an_ignored_key_is_compared_as_it_is():
    assert differences({"seed": 0}, {"seed": 0, "threads": 2}) == [("threads", "-", 2)]
    assert (
        differences({"logger": {"a": 1}, "ckpt_path": "x"}, {"logger": {"b": 2}}, ignored=("logger", "ckpt_path")) == []
    )
