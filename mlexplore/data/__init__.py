"""Structures and their labels: :class:`StructureDataset`, checks and splits."""

from .dataset import CALCULATOR_PROPERTIES, LABEL_UNITS, StructureDataset
from .splits import group_split, kfold, random_split, shuffled_splits, split_counts, stratified_split
from .validate import MIN_DISTANCE, check_dataset

__all__ = [
    "StructureDataset", "LABEL_UNITS", "CALCULATOR_PROPERTIES", "check_dataset", "MIN_DISTANCE",
    "random_split", "stratified_split", "group_split", "kfold", "shuffled_splits", "split_counts",
]
