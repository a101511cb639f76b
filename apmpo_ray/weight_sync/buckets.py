"""Bucketing of named tensors into packed byte buffers.

Sending one message per tensor costs a round trip per parameter; packing many tensors into one contiguous
uint8 buffer per bucket makes the transfer cost track bytes, not parameter count. Both sides derive the
same layout from the same metadata, so only the metadata travels on the control plane.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TensorMeta:
    name: str
    dtype_name: str  # torch dtype without the "torch." prefix, as vLLM's update infos carry it
    shape: tuple[int, ...]

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype_name)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @classmethod
    def of(cls, name: str, tensor: torch.Tensor) -> "TensorMeta":
        return cls(name, str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape))


def plan_buckets(metas: list[TensorMeta], bucket_bytes: int) -> list[int]:
    """Number of consecutive tensors in each bucket.

    A bucket holds at most ``bucket_bytes`` unless one tensor alone is larger, in which case it travels alone.
    """
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be positive, got {bucket_bytes}")
    sizes: list[int] = []
    count = filled = 0
    for meta in metas:
        if count and filled + meta.nbytes > bucket_bytes:
            sizes.append(count)
            count = filled = 0
        count += 1
        filled += meta.nbytes
    if count:
        sizes.append(count)
    return sizes


def count_vllm_buckets(metas: list[TensorMeta], buffer_bytes: int) -> int:
    """Buckets vLLM's packed NCCL producer cuts: it closes a bucket once it *exceeds* ``buffer_bytes``."""
    count = filled = 0
    for meta in metas:
        filled += meta.nbytes
        if filled > buffer_bytes:
            count += 1
            filled = 0
    return count + (1 if filled else 0)


def pack(tensors: list[torch.Tensor], device: torch.device | str = "cpu") -> torch.Tensor:
    """One contiguous uint8 buffer on ``device`` holding the raw bytes of ``tensors`` back to back (CPU for
    gloo; the tensors' own GPU for NCCL, which refuses CPU tensors)."""
    flat = [t.detach().to(device).contiguous().view(-1).view(torch.uint8) for t in tensors]
    return torch.cat(flat) if len(flat) > 1 else flat[0].clone()


def unpack(buffer: torch.Tensor, metas: list[TensorMeta]) -> list[tuple[str, torch.Tensor]]:
    """Inverse of :func:`pack`; the tensors are views into ``buffer`` where alignment allows."""
    expected = sum(m.nbytes for m in metas)
    if buffer.numel() != expected:
        raise ValueError(f"packed buffer holds {buffer.numel()} bytes, metadata describes {expected}")
    out = []
    for meta, part in zip(metas, buffer.split([m.nbytes for m in metas])):
        if part.storage_offset() % meta.dtype.itemsize:
            part = part.clone()  # reinterpreting bytes needs an offset aligned to the element size
        out.append((meta.name, part.view(meta.dtype).view(meta.shape)))
    return out
