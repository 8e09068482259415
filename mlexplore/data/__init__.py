"""Structures and their labels: :class:`StructureDataset`, checks and splits."""

from .dataset import CALCULATOR_PROPERTIES, LABEL_UNITS, StructureDataset, Structures, parse_meta
from .splits import group_split, kfold, random_split, shuffled_splits, split_counts, stratified_split
from .validate import COVALENT_FRACTION, MIN_DISTANCE, check_dataset, check_pair_distances, check_structures

__all__ = [
    "StructureDataset", "Structures", "parse_meta", "LABEL_UNITS", "CALCULATOR_PROPERTIES", "check_dataset", "MIN_DISTANCE",
    "check_structures", "check_pair_distances", "COVALENT_FRACTION",
    "random_split", "stratified_split", "group_split", "kfold", "shuffled_splits", "split_counts",
]
