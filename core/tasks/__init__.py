"""The task-level view: task embeddings, task similarity, warm start from similar tasks, NMF of tasks."""

from core.tasks.draw import TaskDrawer
from core.tasks.embedding import TaskEncoder, metric_embeddings, parameter_embeddings, train_task_encoder
from core.tasks.features import ImageFeatures
from core.tasks.nmf import NMFResult, task_nmf
from core.tasks.similarity import nearest_tasks, similarity_matrix
from core.tasks.study import StudyConfig, TaskStudy, run_study
from core.tasks.warmstart import StartComparison, compare_starts

__all__ = [
    "ImageFeatures", "NMFResult", "StartComparison", "StudyConfig", "TaskDrawer", "TaskEncoder", "TaskStudy",
    "compare_starts", "metric_embeddings", "nearest_tasks", "parameter_embeddings", "run_study",
    "similarity_matrix", "task_nmf", "train_task_encoder",
]  # fmt: skip
