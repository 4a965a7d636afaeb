"""SFT, ORPO, SimPO, full fine-tuning, precomputed reference log-probs and continued adapters, on the
tiny random Llama with the real tokenizer, real TRL and real PEFT."""

from __future__ import annotations

import json

import pytest

from lettingo.components import Context
from lettingo.testing import plugin_registered
from lettingo_trl.aligner import AlignerInputError

from lettingo_trl.testing import make_pairs, preference_gain

FAST = {"learning_rate": 5e-3, "epochs": 3, "batch_size": 2, "seed": 0}


def build(name: str, **settings):
    import lettingo_trl.plugin

    with plugin_registered(lettingo_trl.plugin, "trl-test"):
        return Context().build("aligner", {"name": name, **FAST, **settings})


@pytest.mark.parametrize("name", ["orpo", "simpo"])
def test_reference_free_methods_learn_the_preference(name, tiny_model, tmp_path):
    aligned = build(name).train(make_pairs(), tiny_model, tmp_path / name)
    assert aligned.aligner == name and (tmp_path / name / "adapter" / "adapter_config.json").exists()
    rows = [json.loads(line) for line in (tmp_path / name / "training_log.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and all("rewards/margins" in r for r in rows)
    assert aligned.metrics["reward_margin"] == rows[-1]["rewards/margins"]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert preference_gain(tiny_model, aligned) > 0.5
    card = (tmp_path / name / "adapter" / "README.md").read_text()
    assert {"orpo": "ORPO", "simpo": "SimPO"}[name] in card and tiny_model in card


def test_sft_trains_on_each_distinct_chosen_profile_once(tiny_model, tmp_path):
    pairs = make_pairs(4)
    repeated = [pairs[0], pairs[0].__class__(**{**pairs[0].to_dict(), "rejected": "Another rejected text."})]
    aligner = build("sft")
    assert len(aligner.examples(pairs + repeated[1:], set())) == 4  # one chosen, two rejected: one example
    assert set(aligner.examples(pairs, set())[0]) == {"prompt", "completion"}
    aligned = aligner.train(pairs, tiny_model, tmp_path / "sft")
    rows = [json.loads(line) for line in (tmp_path / "sft" / "training_log.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["loss"] < rows[0]["loss"]  # 4 examples / batch 2 x 3 epochs
    assert "reward_margin" not in aligned.metrics  # SFT has no implicit reward
    assert preference_gain(tiny_model, aligned) > 0  # the chosen texts became likelier than the rejected


def test_dpo_full_finetuning_writes_a_whole_model(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    aligned = build("dpo", lora=None, epochs=1).train(make_pairs(4), tiny_model, tmp_path / "full")
    assert aligned.adapter_path is None and aligned.model_path
    model_dir = tmp_path / "full" / aligned.model_path.rsplit("/", 1)[-1]
    assert model_dir.name.startswith("model-") and (model_dir / "config.json").exists()
    assert not (tmp_path / "full" / "adapter").exists()
    AutoModelForCausalLM.from_pretrained(aligned.model_path)  # loads as a plain model
    assert "full fine-tune" in (model_dir / "README.md").read_text()
    with pytest.raises(AlignerInputError, match="lora is null"):
        build("dpo", lora=None).train(make_pairs(2), tiny_model, tmp_path / "x", init_adapter=str(model_dir))


def test_precomputed_reference_log_probs_train_the_same_adapter(tiny_model, tmp_path):
    """The reference's log-probs do not change during training, so computing them once first gives
    the same losses as computing them at every step."""
    settings = {"epochs": 1, "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}}
    every_step = build("dpo", **settings).train(make_pairs(4), tiny_model, tmp_path / "a")
    once = build("dpo", precompute_ref_log_probs=True, **settings).train(make_pairs(4), tiny_model, tmp_path / "b")
    assert once.metrics["train_loss"] == pytest.approx(every_step.metrics["train_loss"], rel=1e-4)


def test_training_continues_from_a_given_adapter(tiny_model, tmp_path):
    first = build("dpo", epochs=1).train(make_pairs(4), tiny_model, tmp_path / "r1")
    second = build("dpo", epochs=1).train(make_pairs(4), tiny_model, tmp_path / "r2", init_adapter=first.adapter_path)
    rows1 = [json.loads(x) for x in (tmp_path / "r1" / "training_log.jsonl").read_text().splitlines()]
    rows2 = [json.loads(x) for x in (tmp_path / "r2" / "training_log.jsonl").read_text().splitlines()]
    # TRL copies the given adapter as the frozen reference: round 2 is judged against round 1's policy
    assert rows2[0]["rewards/margins"] == 0 and rows2[0]["logps/chosen"] > rows1[0]["logps/chosen"]
    assert preference_gain(tiny_model, second) > preference_gain(tiny_model, first)  # it went on from there
    assert "continued from the adapter" in (tmp_path / "r2" / "adapter" / "README.md").read_text()


def test_every_aligner_option_is_registered_with_its_config():
    from hydra import compose, initialize

    from lettingo import plugins
    import lettingo_trl.plugin

    with plugin_registered(lettingo_trl.plugin, "trl-test"):
        assert {"dpo", "sft", "orpo", "simpo", "none"} <= set(plugins.components("aligner"))
        with initialize(version_base=None, config_path=None):  # the options are the aligners' settings
            for name in ("dpo", "sft", "orpo", "simpo", "none"):
                cfg = compose(overrides=[f"+aligner={name}"])
                assert cfg.aligner.name == name
                aligner = Context().build("aligner", cfg.aligner)
                assert aligner.name == name


def test_dpo_loss_variants_and_weighted_mixtures_reach_trl(tiny_model, tmp_path):
    ipo = build("dpo", loss_type="ipo", epochs=1).train(make_pairs(2), tiny_model, tmp_path / "ipo")
    sigmoid = build("dpo", epochs=1).train(make_pairs(2), tiny_model, tmp_path / "sigmoid")
    assert ipo.metrics["train_loss"] != pytest.approx(sigmoid.metrics["train_loss"])
    trainer, _ = build("dpo", loss_type=["sigmoid", "bco_pair"], loss_weights=[0.8, 0.2])._trainer(
        make_pairs(2), tiny_model, tmp_path / "mix")
    assert trainer.args.loss_type == ["sigmoid", "bco_pair"] and trainer.args.loss_weights == [0.8, 0.2]


def test_training_args_and_report_to_reach_trl(tiny_model, tmp_path):
    aligner = build("dpo", epochs=1, report_to="tensorboard",
                    training_args={"warmup_steps": 1, "lr_scheduler_type": "constant"})
    trainer, _ = aligner._trainer(make_pairs(2), tiny_model, tmp_path / "args" / "checkpoints")
    assert trainer.args.warmup_steps == 1 and trainer.args.lr_scheduler_type == "constant"
    assert trainer.args.report_to == ["tensorboard"]
    aligner.train(make_pairs(2), tiny_model, tmp_path / "run")
    # TensorBoard's event files outlive the checkpoints (removed once training is done)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert not (tmp_path / "run" / "checkpoints").exists()
    sft, _ = build("sft", training_args={"packing": False})._trainer(make_pairs(2), tiny_model, tmp_path / "sft")
    assert sft.args.packing is False and sft.args.report_to == []  # report_to: none by default


@pytest.mark.parametrize("name, extra, message", [
    ("dpo", {"warmup_ratioo": 0.1}, r"DPOSettings\): \['warmup_ratioo'\] are not fields of DPOConfig"),
    ("dpo", {"learning_rate": 1e-3}, r"learning_rate is set by aligner\.learning_rate"),
    ("dpo", {"beta": 0.5}, r"beta is set by aligner\.beta"),
    ("sft", {"rpo_alpha": 0.1}, r"\['rpo_alpha'\] are not fields of SFTConfig"),  # a DPO-only field
])
def test_an_unknown_or_managed_training_arg_is_refused_by_name(name, extra, message):
    with pytest.raises(AlignerInputError, match=message):
        build(name, training_args=extra)
