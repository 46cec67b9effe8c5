"""veRL integration: our module through veRL's own loaders, our manager inside veRL's real reward-loop worker.

Nothing of veRL is mocked: the config is composed by Hydra exactly as ``main_ppo`` composes it, the
reward-loop worker is veRL's ``RewardLoopWorker`` class (run in-process instead of as a Ray actor), the
batch is a real ``DataProto`` tokenised with the project's builtin tokenizer, and rewards are placed with
veRL's own ``assemble_rm_scores``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from qwenlong_verl.worker.rewards.judge import close_clients
from qwenlong_verl.worker.rewards.judge_server import LocalJudgeServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MAX_PROMPT = 48
MAX_RESPONSE = 64
BUFFER = 16
THINK = "<think>\nchecking the report\n</think>\n\n"


@pytest.fixture(scope="module")
def tokenizer():
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    return load_tokenizer("builtin")


@pytest.fixture
def judge():
    with LocalJudgeServer(equivalents=[("NYC", "New York City")], lifetime_s=120) as server:
        yield server


@pytest.fixture(autouse=True)
async def _close_clients(monkeypatch):
    monkeypatch.delenv("QWENLONG_JUDGE_URLS", raising=False)
    yield
    await close_clients()


def compose(*overrides: str):
    from qwenlong_verl.driver.compose import compose as hydra_compose
    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    return hydra_compose(
        "qwenlong_l1",
        [
            f"actor_rollout_ref.model.path={builtin_tokenizer_path()}",
            "reward.reward_manager.name=qwenlong",
            *overrides,
        ],
    )


def make_batch(tokenizer, rows: list[dict]):
    """A DataProto shaped like a rollout: left-padded prompts, right-padded responses."""
    from verl import DataProto

    pad = tokenizer.pad_token_id
    prompts, responses, masks = [], [], []
    for row in rows:
        p_ids = tokenizer.encode(row["prompt"])[-MAX_PROMPT:]
        r_ids = tokenizer.encode(row["response"])[:MAX_RESPONSE]
        row["response_tokens"] = len(r_ids)
        prompts.append([pad] * (MAX_PROMPT - len(p_ids)) + p_ids)
        responses.append(r_ids + [pad] * (MAX_RESPONSE - len(r_ids)))
        masks.append(
            [0] * (MAX_PROMPT - len(p_ids)) + [1] * len(p_ids) + [1] * len(r_ids) + [0] * (MAX_RESPONSE - len(r_ids))
        )
    prompts_t, responses_t = torch.tensor(prompts), torch.tensor(responses)
    return DataProto.from_dict(
        tensors={
            "prompts": prompts_t,
            "responses": responses_t,
            "input_ids": torch.cat([prompts_t, responses_t], dim=1),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array([r["source"] for r in rows], dtype=object),
            "reward_model": np.array([{"ground_truth": r["gold"], "style": "rule"} for r in rows], dtype=object),
            "extra_info": np.array([{"question": r.get("question", "Q?"), "index": i} for i, r in enumerate(rows)]),
        },
    )


async def run_worker(config, batch):
    """veRL's RewardLoopWorker, as the agent loop / RewardLoopManager drive it (minus Ray)."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(config, reward_router_address=None)
    outputs = await worker.compute_score_batch(batch)
    return worker, outputs


def extra_columns(outputs):
    """What RewardLoopManager.compute_rm_score builds from the outputs (same keys required for every row)."""
    infos = [o["reward_extra_info"] for o in outputs]
    keys = list(infos[0])
    return {key: np.array([info[key] for info in infos]) for key in keys}


# ------------------------------------------------------------------ registration and loaders


def test_manager_is_in_veRL_registry():
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

    from qwenlong_verl.worker.rewards.manager import QwenLongRewardManager

    assert get_reward_manager_cls("qwenlong") is QwenLongRewardManager


@pytest.mark.parametrize("name", ["compute_score", "compute_score_async"])
async def test_module_loads_through_veRL_pkg_loader(judge, name):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.import_utils import load_extern_object

    import qwenlong_verl.worker.rewards as rewards

    raw = load_extern_object(module_path="pkg://qwenlong_verl.worker.rewards", object_name=name)
    assert raw is getattr(rewards, name)
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://qwenlong_verl.worker.rewards",
                    "name": name,
                    "reward_kwargs": {"judge_urls": [judge.url], "judge_timeout_s": 5},
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)
    kwargs = dict(data_source="hotpotqa", solution_str=THINK + "The answer is NYC", ground_truth="New York City")
    result = fn(**kwargs, extra_info={"question": "Where?"})
    if inspect.iscoroutine(result):
        assert name == "compute_score_async"
        result = await result
    else:
        assert name == "compute_score"
    assert result["score"] == 1.0 and result["judge"] == 1.0 and judge.chat_requests == 1


# ------------------------------------------------------------------ the manager in veRL's reward loop


async def test_manager_scores_a_real_batch(tokenizer, judge):
    config = compose(
        f"+reward.reward_kwargs.judge_urls=[{judge.url}]",
        # the base config's DAPO defaults (enable, penalty_factor 1.0) with a window this small batch can reach
        f"reward.reward_kwargs.max_resp_len={MAX_RESPONSE}",
        f"reward.reward_kwargs.overlong_buffer_cfg.len={BUFFER}",
        "+reward.reward_kwargs.format_penalty=0.5",
    )
    long_tail = "\n\n" + " ".join(["more"] * 80)
    rows = [
        dict(source="docmath_q", prompt="Q: growth?", response=THINK + "The answer is 12.5%", gold="0.125"),
        dict(source="hotpotqa", prompt="Q: city?", response=THINK + "The answer is NYC", gold="New York City"),
        dict(source="hotpotqa", prompt="Q: city?", response=THINK + "The answer is Boston", gold="New York City"),
        dict(source="long_toc_choices_1", prompt="Q: pick", response=THINK + "The answer is (C)", gold="B"),
        dict(source="hotpotqa", prompt="Q: city?", response="<think>still thinking about it", gold="Paris"),
        dict(source="hotpotqa", prompt="Q: city?", response=THINK + "The answer is Paris." + long_tail, gold="Paris"),
    ]
    batch = make_batch(tokenizer, rows)
    worker, outputs = await run_worker(config, batch)

    from qwenlong_verl.worker.rewards.manager import QwenLongRewardManager

    assert type(worker.reward_manager) is QwenLongRewardManager and worker.reward_manager.uses_hybrid
    infos = [o["reward_extra_info"] for o in outputs]
    rewards = [o["reward_score"] for o in outputs]

    assert infos[0]["rule"] == 1.0 and not infos[0]["judge_used"] and rewards[0] == pytest.approx(1.0)
    assert infos[1]["rule"] == 0.0 and infos[1]["judge"] == 1.0 and infos[1]["judge_used"]
    assert infos[1]["judge_latency_s"] > 0 and rewards[1] == pytest.approx(1.0)
    assert infos[2]["judge"] == 0.0 and rewards[2] == pytest.approx(0.0)
    assert not infos[3]["judge_used"] and rewards[3] == pytest.approx(0.0)  # wrong letter: final
    assert infos[4]["pred"] == "" and not infos[4]["format_ok"] and rewards[4] == pytest.approx(-0.5)
    # row 5 runs past max_resp_len - buffer: DAPO's linear penalty
    expected = min(-(rows[5]["response_tokens"] - (MAX_RESPONSE - BUFFER)) / BUFFER, 0.0)
    assert expected < 0 and infos[5]["overlong"] and infos[5]["overlong_reward"] == pytest.approx(expected)
    assert rewards[5] == pytest.approx(1.0 + expected)
    assert judge.chat_requests == 2

    columns = extra_columns(outputs)  # veRL requires the same keys in every row
    assert {"score", "acc", "pred", "rule", "judge", "judge_error", "judge_used", "judge_latency_s"} <= set(columns)
    assert {"overlong", "overlong_reward", "format_ok"} <= set(columns)

    rm_scores = QwenLongRewardManager.assemble_rm_scores(batch, rewards)
    last = batch.batch["attention_mask"][:, MAX_PROMPT:].sum(-1) - 1
    assert torch.allclose(rm_scores[torch.arange(len(rows)), last], torch.tensor(rewards, dtype=torch.float32))
    assert rm_scores.sum().item() == pytest.approx(sum(rewards))

    from qwenlong_verl.worker.rewards.metrics import reward_metrics

    metrics = reward_metrics(columns)
    assert metrics["qwenlong_reward/judge_calls"] == 2.0 and metrics["qwenlong_reward/judge_flips"] == 1.0
    assert metrics["qwenlong_reward/acc"] == pytest.approx(3 / 6)
    assert metrics["qwenlong_reward/format_violation_rate"] == pytest.approx(1 / 6)


async def test_judge_prompt_flows_from_reward_kwargs_through_the_manager(tokenizer):
    """``judge_prompt`` and the reasoning options in ``reward.reward_kwargs`` reach every judge request the
    manager's workers send (the published layout, its reply format read by its own rule)."""
    from support.eval_server import ChatServer, Reply

    def respond(call) -> Reply:
        same = "Answer 1: NYC\n" in call.prompt
        return Reply(text=f"1) Compared.\n2) [[{'YES' if same else 'NO'}]]\nDone.")

    with ChatServer(respond, model="judge") as server:
        config = compose(
            f"+reward.reward_kwargs.judge_urls=[{server.url}]",
            "+reward.reward_kwargs.judge_prompt=qwenlong_l1",
            "+reward.reward_kwargs.judge_max_tokens=512",
            "+reward.reward_kwargs.judge_chat_template_kwargs={enable_thinking:false}",
        )
        rows = [
            dict(source="hotpotqa", prompt="Q: city?", response=THINK + "The answer is NYC", gold="New York City"),
            dict(source="hotpotqa", prompt="Q: city?", response=THINK + "The answer is Boston", gold="New York City"),
        ]
        _, outputs = await run_worker(config, make_batch(tokenizer, rows))
        calls = server.calls_snapshot()
    assert [o["reward_extra_info"]["judge"] for o in outputs] == [1.0, 0.0]
    assert [o["reward_score"] for o in outputs] == [1.0, 0.0]  # the closing "Done." is allowed by this preset
    assert len(calls) == 2
    for call in calls:
        system, user = call.body["messages"]
        assert system["content"].startswith("You are an expert in verifying if two answers are the same.")
        assert user["content"].endswith("\nAnswer 2: New York City\n")
        assert call.body["max_tokens"] == 512 and call.body["chat_template_kwargs"] == {"enable_thinking": False}


async def test_prompt_that_opens_think_requires_a_closed_block(tokenizer):
    config = compose("+reward.reward_kwargs.format_penalty=1.0")
    opened = "Q: answer?\n<think>\n"
    rows = [
        dict(source="docmath", prompt=opened, response="12 so the answer is 42", gold="42"),
        dict(source="docmath", prompt=opened, response="12 so</think>The answer is 42", gold="42"),
        dict(source="docmath", prompt="Q: answer?", response="The answer is 42", gold="42"),
    ]
    _, outputs = await run_worker(config, make_batch(tokenizer, rows))
    assert [o["reward_score"] for o in outputs] == [-1.0, 1.0, 1.0]
    assert [o["reward_extra_info"]["pred"] for o in outputs] == ["", "42", "42"]


async def test_custom_reward_function_path_with_our_manager(tokenizer, judge):
    config = compose(
        "reward.custom_reward_function.path=pkg://qwenlong_verl.worker.rewards",
        "reward.custom_reward_function.name=compute_score",
        f"+reward.custom_reward_function.reward_kwargs.judge_urls=[{judge.url}]",
    )
    rows = [dict(source="hotpotqa", prompt="Q", response=THINK + "The answer is NYC", gold="New York City")]
    worker, outputs = await run_worker(config, make_batch(tokenizer, rows))
    assert not worker.reward_manager.uses_hybrid and not worker.reward_manager.is_async_reward_score
    assert outputs[0]["reward_score"] == 1.0 and outputs[0]["reward_extra_info"]["judge"] == 1.0


async def test_no_judge_configured_is_rule_only(tokenizer):
    config = compose()  # the shipped defaults: no judge, overlong buffer over the last 1024 of 10240 tokens
    rows = [dict(source="hotpotqa", prompt="Q", response=THINK + "The answer is NYC", gold="New York City")]
    _, outputs = await run_worker(config, make_batch(tokenizer, rows))
    info = outputs[0]["reward_extra_info"]
    assert (outputs[0]["reward_score"], info["judge"], info["judge_error"], info["judge_used"]) == (0, -1.0, "", False)
    assert info["overlong_reward"] == 0.0 and not info["overlong"]


# ------------------------------------------------------------------ settings errors, at worker start


@pytest.mark.parametrize(
    "reward_kwargs, message",
    [
        ({"overlong_buffer_cfg": {"enable": True, "len": 16}}, "max_resp_len must be set"),
        ({"overlong_buffer_cfg": {"enable": True, "len": 0}, "max_resp_len": 10}, "positive integer"),
        (
            {"overlong_buffer_cfg": {"enable": True, "len": 32}, "max_resp_len": 16},
            "must be >= overlong_buffer_cfg.len",
        ),
        ({"overlong_buffer_cfg": {"enable": True, "lenght": 32}}, "overlong_buffer_cfg: lenght"),
        ({"format_penalty": -1}, "format_penalty"),
        ({"max_response_len": 10}, "unknown key.*max_response_len"),
        ({"judge_max_concurrency": 0}, "judge_max_concurrency"),
    ],
)
def test_bad_reward_kwargs_name_the_key(reward_kwargs, message):
    from qwenlong_verl.worker.rewards.manager import QwenLongRewardConfig

    with pytest.raises(ValueError, match=message):
        QwenLongRewardConfig.from_reward_kwargs(reward_kwargs)


def test_dapo_keys_read_like_dapo():
    from omegaconf import OmegaConf

    from qwenlong_verl.worker.rewards.manager import QwenLongRewardConfig

    kwargs = OmegaConf.create(
        {
            "overlong_buffer_cfg": {"enable": True, "len": 4096, "penalty_factor": 1.0, "log": False},
            "max_resp_len": 20480,
        }
    )
    config = QwenLongRewardConfig.from_reward_kwargs(kwargs)
    assert config.overlong_reward(16384) == 0.0
    assert config.overlong_reward(18432) == pytest.approx(-0.5)
    assert config.overlong_reward(20480) == pytest.approx(-1.0)
    assert QwenLongRewardConfig.from_reward_kwargs(None).overlong_reward(10**6) == 0.0


# ------------------------------------------------------------------ judge load across reward workers


@pytest.mark.parametrize("workers, total, share", [(4, 10, 3), (8, 64, 8), (16, 4, 1)])
def test_judge_concurrency_is_a_total_shared_among_reward_workers(workers, total, share):
    from qwenlong_verl.worker.rewards.manager import judge_share

    kwargs = {"judge_urls": ["http://h"], "judge_max_concurrency": total}
    assert judge_share(kwargs, workers) == {**kwargs, "judge_max_concurrency": share}
    assert judge_share({}, workers)["judge_max_concurrency"] == -(-64 // workers)  # the default 64 is a total too


async def test_each_reward_worker_holds_its_share_of_the_judge_limit(tokenizer):
    """veRL's real reward-loop worker with reward.num_workers=4 and a total of 10: this worker's client lets
    ceil(10 / 4) = 3 judge requests in flight at one endpoint, not 10."""
    rows = [
        dict(source="hotpotqa", prompt="Q: city?", response=THINK + f"The answer is Town {i}", gold="New York City")
        for i in range(12)
    ]
    with LocalJudgeServer(latency_s=0.2, lifetime_s=120) as judge:
        config = compose(
            "reward.num_workers=4",
            "+reward.reward_kwargs.judge_max_concurrency=10",
            f"+reward.reward_kwargs.judge_urls=[{judge.url}]",
        )
        assert config.reward.num_workers == 4
        worker, outputs = await run_worker(config, make_batch(tokenizer, rows))
        assert worker.reward_manager.compute_score.keywords["judge_max_concurrency"] == 3
        assert judge.chat_requests == 12 and judge.max_in_flight == 3
    assert all(o["reward_extra_info"]["judge"] == 0.0 for o in outputs)
