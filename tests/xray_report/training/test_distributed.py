"""Loss is independent of gradient accumulation and of the number of processes; DDP ranks stay identical.

The encoder is frozen in these runs (`freeze_encoder_steps`): BatchNorm then normalises with its running
statistics, so a batch of 8 and four micro-batches of 2 compute the same function. Every report has the same
token length, so the mean of micro-batch token means equals the token mean of the whole batch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from training_fixtures import (
    REPO_ROOT,
    SaveParametersAtStep,
    logged_losses,
    max_difference,
    parameters_of,
    run,
    run_with_callbacks,
    tiny_argv,
    write_studies,
)

FROZEN = ("--freeze_encoder_steps", "1000")


@pytest.fixture(scope="module")
def equal_length_studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("equal") / "studies", num_studies=40, same_report=True)


def test_loss_and_update_are_the_same_at_ga1_and_ga4(equal_length_studies, tmp_path):
    one = run(tiny_argv(equal_length_studies, tmp_path / "ga1", "--per_device_train_batch_size", "8",
                        "--gradient_accumulation_steps", "1", "--max_steps", "2", *FROZEN))
    four = run(tiny_argv(equal_length_studies, tmp_path / "ga4", "--per_device_train_batch_size", "2",
                         "--gradient_accumulation_steps", "4", "--max_steps", "2", *FROZEN))
    losses_one, losses_four = logged_losses(one.trainer), logged_losses(four.trainer)
    assert len(losses_one) == len(losses_four) == 2
    for a, b in zip(losses_one, losses_four):
        assert b == pytest.approx(a, rel=1e-3), (losses_one, losses_four)  # the bug gave 4x
    assert max_difference(parameters_of(one.trainer.model), parameters_of(four.trainer.model)) < 1e-4


_WORKER = r'''
import hashlib, json, os, sys
sys.path.insert(0, {repo!r})
sys.path.insert(0, os.path.join({repo!r}, "tests"))
import torch
from training_fixtures import SaveParametersAtStep, run_with_callbacks

run = run_with_callbacks(sys.argv[1:], [SaveParametersAtStep(2, os.path.join({out!r}, "ddp_step2.safetensors"))])
digest = hashlib.sha256()
for name, parameter in sorted(run.trainer.model.named_parameters()):
    digest.update(name.encode())
    digest.update(parameter.detach().double().numpy().tobytes())
rank = int(os.environ.get("RANK", "0"))
with open(os.path.join({out!r}, f"rank{{rank}}.json"), "w") as handle:
    json.dump({{"digest": digest.hexdigest(), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
               "losses": [e["loss"] for e in run.trainer.state.log_history if "loss" in e],
               "encoder_sum": float(sum(p.double().sum() for p in run.trainer.model.encoder.parameters()))}}, handle)
'''


@pytest.mark.slow
def test_two_process_ddp_on_cpu(equal_length_studies, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU: two real gloo processes."""
    if shutil.which("accelerate") is None and not (REPO_ROOT / ".venv" / "bin" / "accelerate").exists():
        pytest.skip("the accelerate command is not installed")
    launcher = shutil.which("accelerate") or str(REPO_ROOT / ".venv" / "bin" / "accelerate")
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER.format(repo=str(REPO_ROOT), out=str(tmp_path)))
    # The encoder is frozen for 2 of the 4 steps, then trained: the ranks must still agree afterwards.
    argv = tiny_argv(equal_length_studies, tmp_path / "ddp", "--per_device_train_batch_size", "2",
                     "--max_steps", "4", "--freeze_encoder_steps", "2", "--activation_checkpointing", "true")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO_ROOT)}
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531",
               str(worker), *argv]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2], "accelerate did not start two processes"
    assert ranks[0]["digest"] == ranks[1]["digest"], "the ranks' parameters differ"

    single = run_with_callbacks(
        tiny_argv(equal_length_studies, tmp_path / "single", "--per_device_train_batch_size", "4", "--max_steps", "4",
                  "--freeze_encoder_steps", "2", "--activation_checkpointing", "true"),
        [SaveParametersAtStep(2, tmp_path / "single_step2.safetensors")])
    ddp_losses, single_losses = ranks[0]["losses"], logged_losses(single.trainer)
    assert len(ddp_losses) == len(single_losses) == 4, (ddp_losses, single_losses)  # logging_steps 1: one per step
    # Steps 1-2 (encoder frozen, BatchNorm fixed): the same 4 studies per step, the same loss, not 2x.
    for a, b in zip(single_losses[:2], ddp_losses[:2]):
        assert b == pytest.approx(a, rel=1e-3), (single_losses, ddp_losses)
    # After the same two updates (global batch 4 either way) the parameters agree too.
    from safetensors.torch import load_file

    ddp_parameters = load_file(str(tmp_path / "ddp_step2.safetensors"))
    single_parameters = load_file(str(tmp_path / "single_step2.safetensors"))
    assert max_difference(ddp_parameters, single_parameters) < 1e-4
