"""Resuming a run from its last checkpoint, so that it ends with the weights an uninterrupted run ends with.

Beside its checkpoints' weights (checkpoints/step-XXXXXXX.safetensors) a run keeps its training state
(train_state/step-XXXXXXX.safetensors): the optimizer's and the schedule's state, where the episode stream stands
(its generator and the draws made ahead) and torch's CPU generator. Tensors go into safetensors, everything
else into its metadata as JSON: nothing is unpickled, for a run folder may come from anyone. Only the latest
state is kept (the weights of every checkpoint stay), as an optimizer's state is twice the model's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load, save

from core.atomic import atomic_write_bytes
from core.config import RunConfig
from core.errors import UserError
from core.store import CheckpointError, RunDir, RunStore, read_checkpoint

if TYPE_CHECKING:
    from core.training.trainer import Trainer

TRAIN_STATE_FORMAT = "metascope-train-state-v1"
RESUMABLE = ("interrupted", "stopped", "failed", "created")  # created: a run whose training never began


class ResumeError(UserError):
    """A run cannot be resumed as asked; the message says why and what to do instead."""


def pack(value: Any, tensors: dict[str, torch.Tensor], name: str) -> Any:
    """`value` (nested dicts, lists, tuples, numbers, strings, tensors) as JSON, its tensors moved into `tensors`."""
    if isinstance(value, torch.Tensor):
        tensors[name] = value.detach().to("cpu").contiguous()
        return {"__tensor__": name}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: pack(v, tensors, f"{name}.{k}") for k, v in value.items()}
        return {"__items__": [[k, pack(v, tensors, f"{name}.{k}")] for k, v in value.items()]}  # int keys stay ints
    if isinstance(value, tuple):
        return {"__tuple__": [pack(v, tensors, f"{name}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [pack(v, tensors, f"{name}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{name}: a {type(value).__name__} cannot be stored without pickle")


def unpack(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of pack."""
    if isinstance(node, list):
        return [unpack(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        return tensors[node["__tensor__"]]
    if "__items__" in node:
        return {k: unpack(v, tensors) for k, v in node["__items__"]}
    if "__tuple__" in node:
        return tuple(unpack(v, tensors) for v in node["__tuple__"])
    return {k: unpack(v, tensors) for k, v in node.items()}


def state_path(run: RunDir, step: int) -> Path:
    return run.train_state_dir / f"step-{step:07d}.safetensors"


def save_train_state(run: RunDir, trainer: Trainer) -> Path:
    """Write the trainer's state at its current step beside that step's checkpoint; drop older states."""
    tensors: dict[str, torch.Tensor] = {}
    state = {
        "step": trainer.step,
        "episodes_seen": trainer.step * trainer.config.meta_batch,  # the stream's position: every step uses a meta-batch
        "optimizer": pack(trainer.optimizer.state_dict(), tensors, "optimizer") if trainer.optimizer else None,
        "schedule": pack(trainer.schedule.state_dict(), tensors, "schedule") if trainer.schedule else None,
        "sampler": pack(trainer.sampler.state(), tensors, "sampler"),
        "rng": pack(torch.get_rng_state(), tensors, "rng"),
    }
    meta = {"format": TRAIN_STATE_FORMAT, "step": str(trainer.step), "state": json.dumps(state)}
    path = atomic_write_bytes(state_path(run, trainer.step), save(tensors, metadata=meta))
    for older in run.train_state_dir.glob("step-*.safetensors"):
        if older != path:
            older.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class ResumePoint:
    """What a run continues from: the step, the weights (learner.state_dict()) and the training state (see pack)."""

    step: int
    weights: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]

    def restore(self, trainer: Trainer) -> None:
        """Put `trainer` where the run was at `step`: weights, optimizer, schedule, episode stream, generator."""
        if self.state["episodes_seen"] != self.step * trainer.config.meta_batch:
            raise ResumeError(
                f"the saved training state is of another meta-batch than {trainer.config.meta_batch}; resume with the run's own settings"
            )
        trainer.learner.load_state_dict(self.weights)
        if trainer.optimizer and self.state["optimizer"] is not None:
            trainer.optimizer.load_state_dict(unpack(self.state["optimizer"], self.tensors))
        if trainer.schedule and self.state["schedule"] is not None:
            trainer.schedule.load_state_dict(unpack(self.state["schedule"], self.tensors))
        trainer.sampler.load_state(unpack(self.state["sampler"], self.tensors))
        torch.set_rng_state(unpack(self.state["rng"], self.tensors))
        trainer.step = self.step

    def to_bytes(self) -> bytes:
        """The tensors as one safetensors blob (for torchrun's other processes, which may not see the run folder)."""
        tensors = {**{f"weights/{k}": v for k, v in self.weights.items()}, **{f"state/{k}": v for k, v in self.tensors.items()}}
        return save({k: v.contiguous() for k, v in tensors.items()})

    @classmethod
    def from_bytes(cls, step: int, state: dict[str, Any], data: bytes) -> ResumePoint:
        tensors = load(data)
        split = {p: {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)} for p in ("weights/", "state/")}
        return cls(step, split["weights/"], split["state/"], state)


def read_point(run: RunDir) -> ResumePoint | None:
    """The latest step of `run` with both weights and training state; None when training never reached a checkpoint.

    ResumeError for checkpoints without any state (a run trained before runs could be resumed)."""
    saved = run.checkpoints()
    states = {c.step: state_path(run, c.step) for c in saved if state_path(run, c.step).exists()}
    if saved and not states:
        raise ResumeError(f"run {run.id} has checkpoints but no training state to resume from; warm-start a new run from it (--init-from)")
    if not saved:
        return None
    step = max(states)
    weights, _ = read_checkpoint(next(c.path for c in saved if c.step == step))
    path = states[step]
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != TRAIN_STATE_FORMAT:
                raise CheckpointError(f"{path} is not a MetaScope training state (no '{TRAIN_STATE_FORMAT}' tag)")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        state = json.loads(meta["state"])
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} is damaged ({exc}); the run cannot be resumed from step {step}") from exc
    return ResumePoint(step, weights, tensors, state)


def find_run(ref: str, runs_dir: str | Path) -> RunDir:
    """A run folder given by path, or by id inside `runs_dir`."""
    if (Path(ref) / "config.json").is_file():
        return RunDir(ref)
    try:
        return RunStore(runs_dir).get(ref)
    except CheckpointError:
        raise ResumeError(f"no run '{ref}': give a run folder, or a run id in the runs folder {runs_dir}", "resume") from None


def check_resumable(run: RunDir) -> RunConfig:
    """The run's config when it can be resumed now; ResumeError naming why not otherwise."""
    status = run.status()
    if status == "finished":
        raise ResumeError(
            f"run {run.id} has finished all its steps; there is nothing to resume. Start a new run, or warm-start one from it (--init-from)"
        )
    if status == "running":
        raise ResumeError(f"run {run.id} is being trained by another process now; wait for it to end, or stop it", "resume")
    if status not in RESUMABLE:
        raise ResumeError(f"run {run.id} reads '{status}'; only an interrupted, stopped or failed run can be resumed", "resume")
    return run.config()


def find_resumable(runs_dir: str | Path, config: RunConfig, job: str | None = None) -> RunDir | None:
    """The newest run of `runs_dir` trained with `config` that can be resumed now (of torchrun job `job` when given):
    what `--resume auto` and a job restarted by torchrun continue."""
    for run in RunStore(runs_dir).runs():
        if run.status() not in RESUMABLE or (job is not None and run.info().get("job") != job):
            continue
        try:
            if run.config() == config:
                return run
        except CheckpointError:
            continue  # a damaged run folder is not this job's
    return None


def records_until(run: RunDir, step: int) -> list[tuple[str, dict[str, Any]]]:
    """The run's metrics records up to `step` as (kind, record): what a run resumed at `step` keeps."""
    kept = [r for r in run.metrics() if isinstance(r.get("step"), int) and r["step"] <= step]
    return [(r.get("kind", "train"), {k: v for k, v in r.items() if k != "kind"}) for r in kept]
