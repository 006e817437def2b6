"""Training past one process: torchrun starts the processes, each takes its part of every meta-batch of the
one seeded episode stream, and torch.distributed sums their gradients before each optimizer step.

torchrun (`python -m torch.distributed.run`) sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address;
join() reads them. One process group carries both kinds of tensors: gloo the CPU's, NCCL the GPUs' (each
process on the GPU of its LOCAL_RANK), so a run's gradients travel the way its device asks. Rank 0 alone
writes the run folder (core.training.job); the others train the same steps and write nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from core.errors import UserError
from core.learners import MetaLearner
from core.training.trainer import Alone

RESTART_COUNT_ENV = "TORCHELASTIC_RESTART_COUNT"  # how many times torchrun restarted this job's processes
MAX_RESTARTS_ENV = "TORCHELASTIC_MAX_RESTARTS"  # torchrun's --max-restarts
JOB_ID_ENV = "TORCHELASTIC_RUN_ID"  # the rendezvous id: one per torchrun job (--rdzv-id; random with --standalone)


class Interrupted(Exception):
    """This process cannot go on: a collective failed, as another process of the job is gone.

    (torchrun may end this process with SIGTERM first: core.training.stop_signal answers that.)"""


def collective(name: str, call: Callable[[], Any]) -> Any:
    """`call`, a torch.distributed collective; its failure (a lost peer: gloo and NCCL raise RuntimeError) as Interrupted."""
    try:
        return call()
    except RuntimeError as exc:
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise Interrupted(f"{name} failed: {reason.split('. ')[0]}") from exc


def under_torchrun() -> bool:
    """Whether torchrun started this process."""
    return JOB_ID_ENV in os.environ and "RANK" in os.environ


def restarted() -> bool:
    """Whether torchrun restarted this job (--max-restarts) after a process of it failed."""
    return under_torchrun() and int(os.environ.get(RESTART_COUNT_ENV, "0") or 0) > 0


def restarts_left() -> int:
    """How many more times torchrun will restart this job (--max-restarts) if a process of it fails."""
    if not under_torchrun():
        return 0
    return int(os.environ.get(MAX_RESTARTS_ENV, "0") or 0) - int(os.environ.get(RESTART_COUNT_ENV, "0") or 0)


def job_id() -> str | None:
    return os.environ.get(JOB_ID_ENV) if under_torchrun() else None


class Ranks(Alone):
    """This process's share of a torchrun job: rank `rank` of `world_size`.

    Each meta-batch of E episodes is cut into contiguous parts, rank r taking positions floor(rE/N) to
    floor((r+1)E/N) - 1, so the episodes a step sees are those of one process whatever N is. Each process
    weighs its losses by 1/E (Trainer._backward), so summing gradients over processes gives the gradient of
    the meta-batch's mean loss, as one process computes it (to float rounding). Batch-norm running statistics
    are combined as the E episodes would have updated them one after another (see end_step).
    """

    def __init__(self, rank: int, world_size: int, local_rank: int):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self._before: list[tuple[nn.modules.batchnorm._BatchNorm, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._meta_batch, self._part = 1, range(1)

    def part(self, meta_batch: int) -> range:
        """This rank's contiguous part of each meta-batch (and the meta-batch end_step combines)."""
        n = self.world_size
        check_shares(meta_batch, n)
        self._meta_batch, self._part = meta_batch, range(self.rank * meta_batch // n, (self.rank + 1) * meta_batch // n)
        return self._part

    def begin_step(self, learner: MetaLearner) -> None:
        self._before = [
            (bn, bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in running_norms(learner)
        ]

    def end_step(
        self, learner: MetaLearner, params: Sequence[nn.Parameter], loss: torch.Tensor, acc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One all-reduce (sum) of everything a step combines, flattened: gradients, loss and accuracy, and each
        batch norm's contribution to its running statistics; no host sync."""
        parts = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        parts += [loss.reshape(1), acc.reshape(1)]
        for bn, mean0, var0, count0 in self._before:
            parts += running_stat_shares(bn, mean0, var0, count0, len(self._part), self._meta_batch - self._part.stop)
        flat = torch.cat([t.detach().reshape(-1).float() for t in parts])
        collective("the all-reduce of a step", lambda: dist.all_reduce(flat))
        pieces = iter(flat.split([t.numel() for t in parts]))
        for p in params:
            summed = next(pieces)
            if p.grad is not None:  # every process runs the same code on same-shaped episodes: the same parameters get gradients
                p.grad.copy_(summed.view_as(p))
        loss, acc = next(pieces)[0], next(pieces)[0]
        for bn, mean0, var0, count0 in self._before:
            set_running_stats(bn, mean0, var0, count0, next(pieces), next(pieces), next(pieces)[0])
        return loss, acc


def check_shares(meta_batch: int, processes: int) -> None:
    """UserError unless every one of `processes` gets at least one episode of each meta-batch."""
    if meta_batch < processes:
        raise UserError(
            f"a meta-batch of {meta_batch} episodes cannot be shared by {processes} processes; use a meta-batch of "
            f"{processes} or more (a multiple of {processes} shares it evenly)",
            "meta_batch",
        )


def running_norms(learner: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch norms of `learner` that keep running statistics."""
    return [m for m in learner.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]


def running_stat_shares(
    bn: nn.modules.batchnorm._BatchNorm, mean0: torch.Tensor, var0: torch.Tensor, count0: torch.Tensor, episodes: int, after: int
) -> list[torch.Tensor]:
    """This process's share of `bn`'s running statistics, to be summed over processes -> [mean (C,), var (C,), updates (1,)].

    With momentum m, u sequential updates from r0 give r = (1-m)^u r0 + d; the whole meta-batch gives
    (1-m)^U r0 + sum over processes of (1-m)^(updates after theirs) d. Updates per episode, k = u / episodes, are
    the same on every process (the same code on same-shaped episodes), so `after` episodes are k*after updates.
    momentum None (a cumulative average) shares sum(batch stats) = r (n0 + u) - r0 n0.
    """
    updates = (bn.num_batches_tracked - count0).float()
    if bn.momentum is None:
        n0 = count0.float()
        return [bn.running_mean * (n0 + updates) - mean0 * n0, bn.running_var * (n0 + updates) - var0 * n0, updates.reshape(1)]
    keep = 1.0 - bn.momentum
    weight = keep ** (updates * after / episodes)
    mean_d, var_d = bn.running_mean - keep**updates * mean0, bn.running_var - keep**updates * var0
    return [weight * mean_d, weight * var_d, updates.reshape(1)]


@torch.no_grad()
def set_running_stats(
    bn: nn.modules.batchnorm._BatchNorm,
    mean0: torch.Tensor,
    var0: torch.Tensor,
    count0: torch.Tensor,
    mean_sum: torch.Tensor,
    var_sum: torch.Tensor,
    updates: torch.Tensor,
) -> None:
    """`bn`'s running statistics after the whole meta-batch, from the summed shares (running_stat_shares)."""
    if bn.momentum is None:
        total = count0.float() + updates
        bn.running_mean.copy_((mean0 * count0.float() + mean_sum) / total)
        bn.running_var.copy_((var0 * count0.float() + var_sum) / total)
    else:
        decay = (1.0 - bn.momentum) ** updates
        bn.running_mean.copy_(decay * mean0 + mean_sum)
        bn.running_var.copy_(decay * var0 + var_sum)
    bn.num_batches_tracked.copy_(count0 + updates.round().long())


def join() -> Alone:
    """This process's place in a torchrun job -> Ranks (the process group joined), or Alone outside torchrun
    or with one process.

    The group's keys go under a prefix of torchrun's restart count: torchrun's rendezvous store outlives a
    restart, and a restarted process must not read the addresses its dead predecessors published there."""
    if not under_torchrun():
        return Alone()
    rank, world_size, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # 'cuda' (device auto) then means this process's GPU
    if world_size == 1:
        return Alone()
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    store, rank, world_size = next(dist.rendezvous("env://"))
    attempt = dist.PrefixStore(f"metascope/attempt-{os.environ.get(RESTART_COUNT_ENV, '0')}", store)
    collective("joining the job", lambda: dist.init_process_group(backend, store=attempt, rank=rank, world_size=world_size))
    return Ranks(rank, world_size, local_rank)


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_device(peers: Alone, device: torch.device) -> None:
    """UserError when this process's device does not fit a torchrun job: one GPU per process, by LOCAL_RANK."""
    if not isinstance(peers, Ranks) or device.type != "cuda":
        return
    if device.index is not None and device.index != peers.local_rank:
        raise UserError(
            f"under torchrun each process trains on the GPU of its LOCAL_RANK; use the device auto or cuda, not {device}", "device"
        )
    if peers.local_rank >= torch.cuda.device_count():
        raise UserError(
            f"process {peers.local_rank} of this machine has no GPU of its own ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU (--nproc-per-node), or train on the CPU",
            "device",
        )


def broadcast_bytes(peers: Alone, data: bytes | None) -> bytes:
    """`data` of rank 0 on every process (CPU tensors: gloo), without pickle; alone, `data` itself."""
    if not isinstance(peers, Ranks):
        return data or b""
    size = torch.tensor([len(data) if peers.rank == 0 and data else 0], dtype=torch.int64)
    collective("a broadcast from rank 0", lambda: dist.broadcast(size, src=0))
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8) if peers.rank == 0 and data else torch.empty(int(size), dtype=torch.uint8)
    if int(size):
        collective("a broadcast from rank 0", lambda: dist.broadcast(buffer, src=0))
    return bytes(buffer.numpy()) if int(size) else b""


def barrier(peers: Alone) -> None:
    """Wait until every process gets here (alone: at once)."""
    if isinstance(peers, Ranks):
        collective("a barrier", dist.barrier)


def torchrun_command(args: Sequence[str], processes: int, max_restarts: int = 0) -> list[str]:
    """The documented command that trains `args` (python -m core's arguments) on `processes` processes of this machine."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return [*launcher, f"--max-restarts={max_restarts}", "-m", "core", *args]


def launch(args: Sequence[str], processes: int, log: str | Path, max_restarts: int = 0) -> subprocess.Popen:
    """Start torchrun_command in its own session (it outlives no one: stop it with .terminate()), output into `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            torchrun_command(args, processes, max_restarts), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
