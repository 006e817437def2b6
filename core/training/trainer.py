"""The training loop. It knows no method and no UI: it reports through callbacks and obeys a stop event."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from core.config import TrainConfig
from core.device import mixed_precision
from core.episodes import EpisodeSampler
from core.learners import MetaLearner
from core.training.live import Record


class Callback:
    """Hooks the Trainer calls; override what you need. Records are plain dicts of numbers."""

    def on_start(self, trainer: Trainer) -> None: ...

    def on_log(self, trainer: Trainer, record: Record) -> None: ...

    def on_validation(self, trainer: Trainer, record: Record) -> None: ...

    def on_step_end(self, trainer: Trainer, step: int) -> None: ...

    def on_end(self, trainer: Trainer, status: str) -> None: ...


class Controls:
    """Stop and pause switches shared between the training thread and whoever drives it.

    event: the Event type; multiprocessing's (a context's .Event) when training runs in another process.
    """

    def __init__(self, event: Callable[[], Any] = threading.Event) -> None:
        self.stop = event()
        self.running = event()  # cleared while paused
        self.running.set()

    def wait_if_paused(self) -> None:
        while not self.running.wait(timeout=0.1):
            if self.stop.is_set():
                return


def compiled(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """`fn` as it is ("off"), or torch.compile'd: "default", or "reduce-overhead" (CUDA graphs on a GPU:
    one replay per step instead of hundreds of kernel launches; shapes are static, so one capture serves)."""
    return fn if mode == "off" else torch.compile(fn, mode=mode, dynamic=False)


def make_optimizer(params: Sequence[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """cosine to 0 over the run, step (halve at 40%, 60%, 80%), or constant."""
    total = config.episodes
    if config.schedule == "cosine":
        rule: Callable[[int], float] = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    elif config.schedule == "step":
        rule = lambda s: 0.5 ** sum(s >= f * total for f in (0.4, 0.6, 0.8))
    else:
        rule = lambda s: 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)


class Trainer:
    """Meta-trains `learner` on episodes from `sampler` for `config.episodes` optimizer steps.

    Each step averages the episode loss over `config.meta_batch` episodes. Where the learner batches
    (`learner.batched`), meta_batch > 1 and config.batch_episodes allows it ('auto': on a GPU), the E
    episodes come stacked from the sampler and go through one forward pass, each with its own batch-norm
    statistics: the same loss and gradient as one episode at a time, to float rounding, in fewer and
    larger kernels. Otherwise each episode runs and backpropagates on its own: meta_batch 1 has nothing
    to batch; pixel_nn has nothing to train; on the CPU, where kernel launches cost little, ProtoNet and
    ANIL ran faster one episode at a time (smaller working sets), and only one episode's graph is held.
    Loss and accuracy stay on the device between records, so only every `log_every`-th step syncs.
    The forward pass runs under bf16 autocast where config.precision resolves to it
    (core.device.mixed_precision); backward and the optimizer step stay outside it, as autocast asks.
    config.compile != "off" compiles the loss function (torch.compile; "reduce-overhead" adds CUDA graphs).
    `validate`, if given, returns {"val_acc": ..., "val_ci": ...} and runs every `val_every` steps.
    """

    def __init__(
        self,
        learner: MetaLearner,
        sampler: EpisodeSampler,
        config: TrainConfig,
        callbacks: Sequence[Callback] = (),
        controls: Controls | None = None,
        validate: Callable[[MetaLearner], Record] | None = None,
        start_step: int = 0,
    ):
        self.learner, self.sampler, self.config = learner, sampler, config
        self.callbacks = list(callbacks)
        self.controls = controls or Controls()
        self.validate = validate
        self.step = start_step
        params = [p for p in learner.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, config) if params else None
        self.schedule = make_schedule(self.optimizer, config) if self.optimizer else None
        self.device = sampler.pool.device
        self.autocast_dtype = mixed_precision(config.precision, self.device)
        wanted = config.batch_episodes == "on" or (config.batch_episodes == "auto" and self.device.type == "cuda")
        self.batched = learner.batched and config.meta_batch > 1 and wanted
        loss_fn = learner.episode_loss_batched if self.batched else learner.episode_loss
        self.loss_fn = compiled(loss_fn, config.compile)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over a meta-batch -> (loss, accuracy) as 0-d device tensors."""
        if self.optimizer:
            self.optimizer.zero_grad(set_to_none=True)
        if self.batched:
            batch = self.sampler.sample_batch(self.config.meta_batch)
            loss, acc = self._backward(batch.support_x, batch.support_y, batch.query_x, batch.query_y, 1)
        else:
            loss, acc = 0.0, 0.0
            for _ in range(self.config.meta_batch):
                ep = self.sampler.sample()
                episode_loss, episode_acc = self._backward(ep.support_x, ep.support_y, ep.query_x, ep.query_y, self.config.meta_batch)
                loss, acc = loss + episode_loss, acc + episode_acc
        if self.optimizer:
            self.optimizer.step()
            self.schedule.step()
        return loss, acc

    def _backward(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor, share: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss of one episode or a stacked batch, divided by `share`, backpropagated -> (loss, accuracy), detached."""
        if self.config.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the last step's graph outputs may be overwritten
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            loss, logits = self.loss_fn(support_x, support_y, query_x, query_y, self.sampler.shape.n_way)
        loss = loss.mean() / share  # the mean over a batch's episodes
        if self.optimizer and loss.requires_grad:
            loss.backward()
        return loss.detach(), (logits.argmax(-1) == query_y).float().mean() / share

    def fit(self) -> str:
        """Train until done or stopped -> 'finished' or 'stopped'."""
        self.learner.train()
        self._emit("on_start")
        window_loss, window_acc, window_steps, window_start = 0.0, 0.0, 0, time.perf_counter()
        status = "finished"
        while self.step < self.config.episodes:
            self.controls.wait_if_paused()
            if self.controls.stop.is_set():
                status = "stopped"
                break
            if window_steps == 0:
                window_start = time.perf_counter()  # a pause must not count as slow training
            loss, acc = self.train_step()
            self.step += 1
            window_loss, window_acc, window_steps = window_loss + loss, window_acc + acc, window_steps + 1
            last = self.step == self.config.episodes
            if self.step % self.config.log_every == 0 or last:
                loss_value, acc_value = float(window_loss), float(window_acc)  # the one sync per record
                elapsed = max(time.perf_counter() - window_start, 1e-9)  # after the sync: a GPU's queued work counts
                record = {
                    "step": self.step,
                    "loss": loss_value / window_steps,
                    "train_acc": acc_value / window_steps,
                    "lr": self.optimizer.param_groups[0]["lr"] if self.optimizer else 0.0,
                    "episodes_per_s": window_steps * self.config.meta_batch / elapsed,
                    "time": time.time(),
                }
                window_loss, window_acc, window_steps = 0.0, 0.0, 0
                self._emit("on_log", record)
            if self.validate and self.config.val_every and (self.step % self.config.val_every == 0 or last):
                self._emit("on_validation", {"step": self.step, "time": time.time(), **self.validate(self.learner)})
                self.learner.train()
            self._emit("on_step_end", self.step)
        self._emit("on_end", status)
        return status
