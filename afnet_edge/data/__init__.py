"""Datasets: seeded synthetic videos (:mod:`.synthetic`), Move4MNIST-style videos (:mod:`.move4mnist`) and
TSN-layout video / frame-folder lists (:mod:`.video_list`).

Every dataset returns ``(clip, label)`` with clip a float32 tensor ``(T, 3, H, W)`` normalised as the official
pipeline does (spec §6, §10) and label an int.
"""
from .move4mnist import MOVE4MNIST_CLASSES, Move4MNISTDataset, Move4MNISTSample
from .synthetic import CLASS_NAMES, SyntheticSample, SyntheticVideoDataset, write_synthetic_videos
from .transforms import SCALES, multiscale_crop_params, train_augment
from .video_list import VideoListDataset, VideoRecord, parse_video_list

__all__ = [
    "CLASS_NAMES",
    "MOVE4MNIST_CLASSES",
    "Move4MNISTDataset",
    "Move4MNISTSample",
    "SCALES",
    "SyntheticSample",
    "SyntheticVideoDataset",
    "VideoListDataset",
    "VideoRecord",
    "multiscale_crop_params",
    "parse_video_list",
    "train_augment",
    "write_synthetic_videos",
]
